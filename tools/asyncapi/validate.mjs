// Parse an AsyncAPI document with the official parser and print its diagnostics as JSON.
// Usage: node validate.mjs <path/to/asyncapi.yaml>
// Prints one JSON object: {"diagnostics": [{code, message, severity, path, range}], "parsed": bool}
// severity follows Spectral: 0 error, 1 warning, 2 information, 3 hint. Exit code 0 when
// the document parsed without error-severity diagnostics, 1 otherwise, 2 on bad usage.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Parser } from "@asyncapi/parser";

const file = process.argv[2];
if (!file) {
  console.error("usage: node validate.mjs <asyncapi document>");
  process.exit(2);
}
const source = path.resolve(file);
const text = await readFile(source, "utf8");
const parser = new Parser();
const { document, diagnostics } = await parser.parse(text, { source });
const report = {
  parsed: document !== undefined,
  diagnostics: diagnostics.map((d) => ({
    code: String(d.code),
    message: d.message,
    severity: d.severity,
    path: d.path,
    range: d.range,
  })),
};
process.stdout.write(JSON.stringify(report) + "\n");
const failed = !report.parsed || report.diagnostics.some((d) => d.severity === 0);
process.exit(failed ? 1 : 0);
