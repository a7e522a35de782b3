// Run one MicroPython script on the WebAssembly port (32-bit, object sizes
// as on the ESP32) with the device tree and shims copied in. Used by the
// benchmarks. The script sees the builtin `time` (real clock) unless it
// imports the shim's virtual clock itself.
// usage: node tools/vm/run_script.mjs ROOT SCRIPT.py [heapsize]
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import { copyTree } from "./vmfs.mjs";

const [root, script, heap] = process.argv.slice(2);
const mp = await loadMicroPython({
  heapsize: Number(heap || 1024 * 1024), linebuffer: true,
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});
const py = (name) => name.endsWith(".py");
copyTree(mp.FS, root + "/lib", "/proj/lib", py);
copyTree(mp.FS, root + "/firmware", "/proj/firmware", py);
copyTree(mp.FS, root + "/tools/shims", "/proj/shims", py);
// VM_DATA: a host folder of prepared inputs, seen by the script as /data
if (process.env.VM_DATA) copyTree(mp.FS, process.env.VM_DATA, "/data", () => true);
try {
  mp.runPython("import time\nimport sys\nsys.path.extend(['/proj/lib', '/proj/shims', '/proj'])\n" +
               fs.readFileSync(script, "utf8"));
} catch (e) {
  process.stderr.write(`${e.type || ""} ${e.message}\n`);
  process.exit(1);
}
