// hf_ids.js - token ids from the official Hugging Face tokenizer (npm `tokenizers`, Rust core).
// Usage: node hf_ids.js TOKENIZER_JSON < texts.jsonl > ids.jsonl
// Each input line is a JSON string (the text, already cleaned if you want the full pipeline);
// each output line is the JSON array of its ids, unpadded, truncated as tokenizer.json says.
// Needs the package: NODE_PATH=<dir>/node_modules, with `npm install tokenizers@0.23.2` there.
const fs = require('fs');
const { Tokenizer } = require('tokenizers');

async function main() {
  const tok = Tokenizer.fromFile(process.argv[2]);
  tok.disablePadding();
  const texts = fs.readFileSync(0, 'utf8').split('\n').filter((l) => l.length).map((l) => JSON.parse(l));
  const out = [];
  for (let i = 0; i < texts.length; i += 1000) {
    const encs = await tok.encodeBatch(texts.slice(i, i + 1000));
    for (const e of encs) out.push(JSON.stringify(Array.from(e.getIds())));
  }
  fs.writeFileSync(1, out.join('\n') + (out.length ? '\n' : ''));
}
main().catch((e) => { console.error(e); process.exit(1); });
