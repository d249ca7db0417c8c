#!/usr/bin/env node
// Compile .ksy files with the pinned Kaitai Struct compiler (JavaScript build).
// usage: node ksc.js --target LANG --outdir DIR FILE.ksy...
// Imports ("imports: [other]") are looked up next to the importing file.
"use strict";
const fs = require("fs");
const path = require("path");
const yaml = require("js-yaml");
const ksc = require("kaitai-struct-compiler");
// 0.11 exports the compiler itself; older builds exported its class.
const compiler = typeof ksc === "function" ? new ksc() : ksc;

function usage(msg) {
  process.stderr.write(`ksc.js: ${msg}\nusage: node ksc.js --target LANG --outdir DIR FILE.ksy...\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let target = null, outdir = null;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--target") target = args[++i];
  else if (args[i] === "--outdir") outdir = args[++i];
  else if (args[i] === "--version") { console.log(compiler.version); process.exit(0); }
  else files.push(args[i]);
}
if (!target || !outdir || files.length === 0) usage("need --target, --outdir and at least one .ksy");

async function main() {
  fs.mkdirSync(outdir, { recursive: true });
  for (const file of files) {
    const dir = path.dirname(file);
    const importer = {
      importYaml(name, mode) {
        return Promise.resolve(yaml.load(fs.readFileSync(path.join(dir, name + ".ksy"), "utf8")));
      },
    };
    const ksy = yaml.load(fs.readFileSync(file, "utf8"));
    let out;
    try {
      out = await compiler.compile(target, ksy, importer, false);
    } catch (e) {
      process.stderr.write(`${file}: ${e && e.s$1 ? e.s$1 : e}\n`);
      process.exit(1);
    }
    for (const [name, text] of Object.entries(out)) {
      fs.writeFileSync(path.join(outdir, name), text);
      console.log(path.join(outdir, name));
    }
  }
}
main();
