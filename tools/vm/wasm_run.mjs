// Runs device-logic test modules on the MicroPython WebAssembly port (32-bit,
// object sizes as on the ESP32). One fresh VM per module.
// usage: node tools/vm/wasm_run.mjs SPEC.json
//   SPEC = {trees: {vmdir: hostdir}, files: {vmpath: hostpath}, stubs: {name: src}, path: [...],
//           modules: [name], only: name|null, heapsize, pystack}
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import { copyTree } from "./vmfs.mjs";

const spec = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));

// test trees: sources and small data files, no dot-entries
const testFile = (name) => !name.startsWith(".") && /\.(py|json|bin)$/.test(name);

for (const mod of spec.modules) {
  const mp = await loadMicroPython({
    heapsize: spec.heapsize, pystack: spec.pystack, linebuffer: true,
    stdout: (line) => process.stdout.write(line + "\n"),
    stderr: (line) => process.stdout.write(line + "\n"),
  });
  for (const [vmDir, hostDir] of Object.entries(spec.trees)) copyTree(mp.FS, hostDir, vmDir, testFile);
  for (const [vmPath, hostPath] of Object.entries(spec.files || {}))
    mp.FS.writeFile(vmPath, fs.readFileSync(hostPath));
  mp.FS.mkdirTree("/hide");
  for (const [name, src] of Object.entries(spec.stubs)) mp.FS.writeFile("/hide/" + name, src);
  try {
    mp.runPython(
      "import sys\nsys.path.clear()\nsys.path.extend(" + JSON.stringify(spec.path) + ")\n" +
      "import mprunner\n_rc = mprunner.run_module(" + JSON.stringify(mod) + ", " +
      (spec.only ? JSON.stringify(spec.only) : "None") + ")\n");
  } catch (e) {
    process.stdout.write(`FAIL ${mod}::<vm>\n${e.type || ""} ${e.message}\nRESULT ${mod} 0 1 0\n`);
  }
}
process.exit(0);
