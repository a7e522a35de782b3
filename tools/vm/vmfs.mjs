// Copy a host directory tree into a MicroPython wasm VM's in-memory FS.
// A missing host directory leaves an empty one in the VM (a clean clone has
// no empty dirs). `keep(name)` filters files; __pycache__ is always skipped.
import fs from "node:fs";
import path from "node:path";

export function copyTree(FS, hostDir, vmDir, keep = () => true) {
  FS.mkdirTree(vmDir);
  if (!fs.existsSync(hostDir)) return;
  for (const ent of fs.readdirSync(hostDir, { withFileTypes: true })) {
    if (ent.name === "__pycache__") continue;
    const h = path.join(hostDir, ent.name), v = vmDir + "/" + ent.name;
    if (ent.isDirectory()) copyTree(FS, h, v, keep);
    else if (keep(ent.name)) FS.writeFile(v, fs.readFileSync(h));
  }
}
