// Validates FHIR R4 JSON resources with two independent validators: the
// fhir package (R4 structure definitions: elements, cardinality, required
// code bindings) and @asymmetrik/fhir-json-schema-validator (the official
// FHIR R4 JSON schema). Each argument is a file holding one resource; a
// Bundle's entries are validated on their own as well. Prints one line per
// error and exits 1 if there is any.
'use strict';
const fs = require('fs');
const { Fhir } = require('fhir');
const JSONSchemaValidator = require('@asymmetrik/fhir-json-schema-validator');

const structure = new Fhir();
const schema = new JSONSchemaValidator();
let failed = 0;

function check(where, resource) {
  for (const m of structure.validate(resource, { errorOnUnexpected: true }).messages) {
    if (m.severity === 'error') {
      failed++;
      console.log(`${where}: structure: ${m.location}: ${m.message}`);
    }
  }
  for (const e of schema.validate(resource)) {
    if (e.keyword === 'oneOf' && e.dataPath === '') continue; // the summary of the errors above it
    // The schema of this package lists R4's versions up to 4.0.0; 4.0.1,
    // R4's technical correction, is R4 as published.
    if (e.dataPath === '.fhirVersion' && resource.fhirVersion === '4.0.1') continue;
    failed++;
    console.log(`${where}: schema: ${e.dataPath || '/'}: ${e.message} ${JSON.stringify(e.params)}`);
  }
  if (resource.resourceType === 'Bundle') {
    (resource.entry || []).forEach((en, i) => {
      if (en.resource) check(`${where} entry[${i}] ${en.resource.resourceType}`, en.resource);
    });
  }
}

for (const file of process.argv.slice(2)) {
  let resource;
  try {
    resource = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    failed++;
    console.log(`${file}: not JSON: ${e.message}`);
    continue;
  }
  check(file, resource);
}
process.exit(failed ? 1 : 0);
