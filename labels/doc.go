// Package labels owns rendering chain-of-identity labels: it turns the
// content of a bag label into a 2-D code and into printable formats. It
// imports custody for identifiers and the code payload; nothing in custody
// may import it.
//
// # Formats
//
// Every writer takes an io.Writer:
//
//   - Render turns custody.LabelContent (what the domain says a bag label
//     shows, checked by role) into any of the formats below, with the
//     caller's Options (symbology, stock, time zone, PNG size); the API and
//     the command line both print through it, so they give the same bytes.
//   - WritePNG writes a 2-D code alone, as an 8-bit grayscale PNG.
//   - WritePDF writes labels at label-stock size, one label per page, with
//     pinned creation and modification dates so the same input always gives
//     the same bytes.
//   - WriteZPL writes one label as a ZPL II format for Zebra printers.
//
// The PDF and ZPL renderers share one layout, computed in millimetres for
// the 3 x 2 inch DefaultStock and scaled for other stocks, so a label looks
// the same from either printer path.
//
// # Content
//
// A label follows ISBT 128 ST-004 practice: product name, "FOR AUTOLOGOUS
// USE ONLY" in reverse on a black band, the COI with its keyboard entry check
// character K in a box, the bag ID, the DIN with its boxed K when the bag has
// one, patient name and date of birth (the label is the one place patient
// identifiers are printed; the code never carries them), the collection or
// expiry time in the site's local time with zone abbreviation and UTC offset
// and in UTC beneath it, the storage temperature, the issuing facility and
// the 2-D code. A label with a notice (custody.LabelExceptionalRelease on
// the final product of an exceptional release) prints it in reverse on a
// band across its foot, the rows above set closer; without one the layout
// is unchanged.
//
// The code carries ISBT 128 data structures with their data identifiers,
// as an ICCBBA compound message (custody.ISBTLabelPayload): the COI (Data
// Structure 040), the DIN with its flags (001), the registered product's
// code (003), the expiry in the site's local time (005) and the bag as
// Product Divisions (032). An ISBT 128 reader reads them; coid's scan reads
// them and still reads the "C1:" payloads of labels printed before.
//
// # Codes
//
// QR is the default symbology and Data Matrix (ECC 200) the option. QR uses
// error correction level H (30%), skip2/go-qrcode's Highest; a bag's
// compound message is 48 to 70 characters (byte mode, since = & < > , are
// outside QR's alphanumeric set) and gives a version 5 to 7 symbol (37 x 37
// to 45 x 45 modules). Data Matrix uses boombuler/barcode's ECC 200 encoder
// (ASCII encodation, digit pairs packed; 22 x 22 to 26 x 26).
//
// A code is drawn with a whole number of printer dots per module, from the
// stock's DPI: on the DefaultStock at 300 dpi a QR module is 4 dots (0.34
// mm) and a Data Matrix module 8 dots (0.68 mm); at 203 dpi they are 3 and
// 5 dots. The ZPL leaves the Data Matrix size to the printer's encoder. A stock whose code
// would fall below MinModuleMM per module is refused. The PDF draws the
// code as an inline image (1-bit gray, Flate, hex-encoded) at exactly one
// pixel per printer dot, placed on the dot grid, so a printer at the
// stock's resolution reproduces every module exactly; inline, because fpdf
// writes image XObjects of equal width in random order, which would break
// same-input-same-bytes on a sheet of bags. The quiet zone (4 modules for
// QR, 2 for Data Matrix) is kept clear of text.
//
// # Confusable characters
//
// Identifiers (COI, K, bag ID, DIN) are printed in a monospace face, Courier
// Bold in the PDF, and every zero carries a slash drawn as a line over the
// glyph, so 0 cannot be read as O. In Courier, 1 has a flag and a foot serif
// and I has symmetric top and bottom serifs, so they stay distinct. ZPL II
// printers have no slashed-zero monospace font that can be relied on across
// models, so WriteZPL places each identifier character in its own fixed-pitch
// cell with the resident scalable font and draws the same slash with ^GD over
// each zero; the positions are computed, not left to the printer's metrics.
//
// # Text
//
// The PDF uses only the core fonts Helvetica and Courier with cp1252
// translation, so no fonts are fetched or embedded. Label.Validate therefore
// refuses text that cp1252 cannot represent, rather than printing a
// substitute character in a patient's name. Free text that is too wide for
// its line is set smaller, down to a legible minimum; text that still does
// not fit is refused with custody.ErrInvalid, never cut.
package labels
