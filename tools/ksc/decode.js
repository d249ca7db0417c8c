#!/usr/bin/env node
// Decode MPTCP options with a Kaitai-compiled JavaScript parser; used by the differential tests.
// usage: node decode.js DIR < options.json    (DIR holds MptcpOptions.js; input: ["1e0c...", ...])
// Output: one JSON object per input: {"format": ..., "fields": {name: value}} or {"error": ...}.
// Integers print as numbers (JavaScript's u8 is a double), octets as hex strings.
"use strict";
const fs = require("fs");
const path = require("path");
// The compiled parser requires "kaitai-struct/KaitaiStream": resolve it from here, wherever the parser is.
process.env.NODE_PATH = path.join(__dirname, "node_modules");
require("module").Module._initPaths();
const KaitaiStream = require("kaitai-struct/KaitaiStream");
const MptcpOptions = require(path.resolve(process.argv[2], "MptcpOptions.js")).MptcpOptions;

const hex = (u8) => Buffer.from(u8).toString("hex");
function plain(v) {
  if (v instanceof Uint8Array) return { hex: hex(v) };
  if (Array.isArray(v)) return v.map(plain);
  return v;
}
const out = [];
for (const h of JSON.parse(fs.readFileSync(0, "utf8"))) {
  try {
    const opt = new MptcpOptions(new KaitaiStream(Buffer.from(h, "hex")));
    const body = opt.option.body;
    const fields = {};
    for (const [k, v] of Object.entries(body)) {
      if (k.startsWith("_")) continue;
      fields[k] = plain(v);
    }
    out.push({ format: opt.option.format, fields });
  } catch (e) {
    out.push({ error: String(e && e.message ? e.message : e) });
  }
}
process.stdout.write(JSON.stringify(out));
