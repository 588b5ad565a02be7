// Test-only: render every label format (^XA ... ^XZ) of a ZPL file to PNG
// files with zpl-renderer-js, offline.
// Usage: node render.cjs LABELS.zpl OUT_PREFIX WIDTH_MM HEIGHT_MM DOTS_PER_MM
// writes OUT_PREFIX-0.png, OUT_PREFIX-1.png, ... one per label, in order.
"use strict";
const fs = require("node:fs");
const { ready } = require("zpl-renderer-js");

async function main() {
  const [zplPath, out, widthMM, heightMM, dpmm] = process.argv.slice(2);
  if (!dpmm) throw new Error("usage: render.cjs LABELS.zpl OUT_PREFIX WIDTH_MM HEIGHT_MM DOTS_PER_MM");
  const { api } = await ready;
  const pngs = await api.zplToBase64MultipleAsync(fs.readFileSync(zplPath, "utf8"), Number(widthMM), Number(heightMM), Number(dpmm));
  pngs.forEach((b64, i) => fs.writeFileSync(`${out}-${i}.png`, Buffer.from(b64, "base64")));
}

main().then(() => process.exit(0), (err) => {
  console.error(err);
  process.exit(1);
});
