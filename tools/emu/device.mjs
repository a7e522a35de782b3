// The emulated USB board: the MicroPython WebAssembly VM with the project's
// shims, its REPL served over a pty master fd that tools/emu passes in.
// usage: node device.mjs FD FLASHDIR RTDIR
//   FLASHDIR/fs        the device filesystem (what `mpremote fs` sees as /)
//   FLASHDIR/state.json NVS, OTA data and uid (kept across restarts)
//   RTDIR              tools/emu (+ shims) copied into the VM, hidden from /
// Handles what the wasm REPL lacks (../shared/notes/micropython-runtimes.md):
// raw-paste is refused (R\x00), soft/hard reset rebuild the VM keeping the
// flash, errno is translated (_emu.py), stdin reads block on the pty.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import { spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { copyTree } from "../vm/vmfs.mjs";

const FD = Number(process.argv[2]);
const FLASH = process.argv[3];
const RT = process.argv[4];
const FSDIR = path.join(FLASH, "fs");
const STATE = path.join(FLASH, "state.json");
fs.mkdirSync(FSDIR, { recursive: true });

const sleeper = new Int32Array(new SharedArrayBuffer(4));
const sleepMs = (ms) => Atomics.wait(sleeper, 0, 0, ms);
const input = [];      // bytes received, not yet given to the VM
let outBuf = [];
let muted = false;
let raw = false;        // REPL mode as last requested by the host
let resetCause = 0;     // set by machine.reset()/WDT via emuhost.reset

let bootCount = 0, lastKind = "power";
let dirty = false;      // something ran since the last flash sync
let mp = null;
let intrChar = 3;       // micropython.kbd_intr() as the firmware last set it
// VITALNODE_EMU_TAP: append every byte the board sends to this file (tests
// scan it for secrets); VITALNODE_EMU_SYSNAME: what os.uname() reports
const TAP = process.env.VITALNODE_EMU_TAP ? fs.openSync(process.env.VITALNODE_EMU_TAP, "a") : null;
const SYSNAME = process.env.VITALNODE_EMU_SYSNAME || "esp32";
// FLASHDIR/pins.json {"0": 0}: GPIO levels held at power-on (a pressed button)
const PINS = path.join(FLASH, "pins.json");
// FLASHDIR/sensor.json {"chip": "max86150"}: a sensor board on the I2C bus
// (simmax.attach_spec; synthetic 72/min signals unless it names records)
const SENSOR = path.join(FLASH, "sensor.json");
// VITALNODE_EMU_SPEED=k: the firmware's sleeps pass k times faster than
// real time (a health check of 30 s takes 30/k s); 1 = a real board
const SPEED = Math.max(1, Number(process.env.VITALNODE_EMU_SPEED || 1));

// One TCP request/reply for the VM's socket (tools/emu/socket.py): a helper
// process connects, sends, reads until the server closes. Returns the reply
// as hex, or "E<errno>" (Linux numbers, as the ESP32's lwIP uses).
const TCP_HELPER = `
const net = require("node:net");
const [host, port, ms, cap] = process.argv.slice(1);
const chunks = []; let got = 0;
const fail = (code) => { process.stderr.write(String(code)); process.exit(3); };
const s = net.connect({ host, port: Number(port) });
s.setTimeout(Number(ms), () => fail("ETIMEDOUT"));
s.on("error", (e) => fail(e.code || "EIO"));
s.on("connect", () => { s.end(require("node:fs").readFileSync(0)); });
s.on("data", (d) => { got += d.length; if (got > Number(cap)) fail("EMSGSIZE"); chunks.push(d); });
s.on("end", () => { process.stdout.write(Buffer.concat(chunks)); process.exit(0); });
`;
function tcpExchange(host, port, hexOut, timeoutMs, cap) {
  flushOut();  // a UART would have sent it already (the raw REPL's "OK")
  const ms = timeoutMs || 10000;
  const r = spawnSync(process.execPath, ["-e", TCP_HELPER, String(host), String(port), String(ms), String(cap)],
    { input: Buffer.from(hexOut, "hex"), maxBuffer: cap + 1024, timeout: ms * 4 + 2000 });
  if (r.status === 0) return r.stdout.toString("hex");
  const code = r.error ? "ETIMEDOUT" : (r.stderr || "").toString().trim();
  return "E" + (os.constants.errno[code] || os.constants.errno.EIO);
}

function flushOut() {
  if (!outBuf.length) return;
  let data = Buffer.from(outBuf);
  outBuf = [];
  while (data.length) {
    try { const n = fs.writeSync(FD, data); data = data.subarray(n); }
    catch (e) { if (e.code === "EAGAIN") sleepMs(2); else if (e.code === "EIO") return; else throw e; }
  }
}
function out(bytes) {
  if (muted) return;
  if (TAP) fs.writeSync(TAP, Buffer.from(bytes));
  for (const b of bytes) outBuf.push(b);
  // in the raw REPL the board's "OK" goes out before the command runs, as a
  // UART's would: mpremote waits only 0.5 s for it (tools/provision/board.py),
  // and a command that runs longer under load must not make it look lost
  if (raw || outBuf.length > 4096) flushOut();
}
const outStr = (s) => out(Buffer.from(s, "latin1"));

// Read what the host sent; block (sleeping) until something arrives if asked.
function pump(blockMs) {
  const buf = Buffer.alloc(4096);
  const t0 = Date.now();
  for (;;) {
    try {
      const n = fs.readSync(FD, buf, 0, buf.length, null);
      if (n > 0) { for (let i = 0; i < n; i++) input.push(buf[i]); return true; }
    } catch (e) {
      if (e.code !== "EAGAIN" && e.code !== "EIO") throw e;
    }
    if (blockMs === 0 || (blockMs > 0 && Date.now() - t0 >= blockMs)) return false;
    flushOut();
    sleepMs(2);
  }
}

// sys.stdin inside the VM: blocking, as a board's UART.
function stdinByte() {
  flushOut();
  while (!input.length) pump(-1);
  return input.shift();
}

const emuhost = {
  // the board's state plus how it last booted (for tools waiting on a reset)
  save_state: (s) => {
    const st = JSON.parse(s);
    st.emu = { boots: bootCount, last_boot: lastKind };
    // the NVS holds the node's key: owner-only, as the registry is
    fs.writeFileSync(STATE + ".tmp", JSON.stringify(st), { mode: 0o600 });
    fs.chmodSync(STATE + ".tmp", 0o600);
    fs.renameSync(STATE + ".tmp", STATE);
  },
  reset: (cause) => { resetCause = cause; },
  kbd_intr: (c) => { intrChar = c; },
  sysname: () => SYSNAME,
  tcp_exchange: tcpExchange,
  // called on every firmware sleep: pace to real time, watch for Ctrl-C
  idle: (us) => {
    const until = Date.now() + Math.floor(us / 1000 / SPEED);
    do {
      pump(0);
      if (intrChar !== 3) input.length = 0;  // nobody reads the UART: its buffer overflows
      const i = input.indexOf(3);
      if (i >= 0) { input.splice(0, i + 1); return 1; }
      if (Date.now() >= until) break;
      flushOut();
      sleepMs(Math.min(5, Math.max(0, until - Date.now())));
    } while (true);
    return 0;
  },
};

// Mirror the VM's /flash into FLASHDIR/fs (the board's flash persists).
function syncOut(FS, vmDir, hostDir) {
  const seen = new Set();
  for (const name of FS.readdir(vmDir)) {
    if (name === "." || name === "..") continue;
    seen.add(name);
    const v = vmDir + "/" + name, h = path.join(hostDir, name);
    if (FS.isDir(FS.stat(v).mode)) {
      if (!fs.existsSync(h) || !fs.statSync(h).isDirectory()) { fs.rmSync(h, { force: true, recursive: true }); fs.mkdirSync(h); }
      syncOut(FS, v, h);
    } else {
      const data = FS.readFile(v);
      if (!fs.existsSync(h) || !Buffer.from(data).equals(fs.readFileSync(h))) fs.writeFileSync(h, data);
    }
  }
  for (const name of fs.readdirSync(hostDir)) if (!seen.has(name)) fs.rmSync(path.join(hostDir, name), { recursive: true, force: true });
}
function sync() { if (mp && dirty) { syncOut(mp.FS, "/flash", FSDIR); dirty = false; } }

function runFile(name) {
  let exists = true;
  try { mp.FS.stat("/flash/" + name); } catch { exists = false; }
  if (!exists) return;
  try { mp.runPython(`exec(open(${JSON.stringify(name)}).read(), {"__name__": "__main__"})`); }
  catch (e) {
    if (e.type === "SystemExit" && resetCause) return;
    outStr((e.message || String(e)).replace(/\r?\n/g, "\r\n"));
  }
  dirty = true;
}

// Build a fresh VM on the existing flash: power-on, soft or hard reset.
async function boot(kind) {
  if (mp) sync();
  mp = await loadMicroPython({
    heapsize: 4 * 1024 * 1024, pystack: 32 * 1024, linebuffer: false,
    stdout: out, stderr: out, stdin: stdinByte,
  });
  mp.registerJsModule("emuhost", emuhost);
  copyTree(mp.FS, FSDIR, "/flash");
  copyTree(mp.FS, RT, "/rt");
  const state = fs.existsSync(STATE) ? fs.readFileSync(STATE, "utf8") : "";
  const pins = fs.existsSync(PINS) ? fs.readFileSync(PINS, "utf8") : "{}";
  const sensor = fs.existsSync(SENSOR) ? fs.readFileSync(SENSOR, "utf8") : "";
  intrChar = 3;  // a reset restores Ctrl-C
  // a soft reboot makes reset_cause() SOFT_RESET (5) until the next chip reset;
  // machine.reset() is esp_restart(): HARD_RESET (2) (ports/esp32/modmachine.c)
  const cause = kind === "power" ? 1 : kind === "soft" ? 5 : (resetCause || 2);

  resetCause = 0;
  bootCount++;
  lastKind = kind;
  // a new board gets its own MAC (Espressif OUI 24:0a:c4) on first power-on
  const uid = "240ac4" + Buffer.from(crypto.getRandomValues(new Uint8Array(3))).toString("hex");
  mp.runPython(`
import sys, vfs
sys.path.clear()
sys.path.extend(["/rt", "/rt/shims"])
import _emu, os, socket, machine, esp32, network, time, vclock, simboard, flashfs
_emu.setup(${JSON.stringify(state)}, ${cause}, ${JSON.stringify(uid)}, ${JSON.stringify(pins)},
           ${JSON.stringify(sensor)})
vfs.umount("/")
vfs.mount(vfs.VfsPosix("/flash"), "/")
os.chdir("/")
sys.path.clear()
sys.path.extend(["", ".frozen", "/lib"])
del _emu
`);
  if (kind === "soft") outStr("MPY: soft reboot\r\n");
  runFile("boot.py");
  if (resetCause) return boot("hard");
  muted = true;
  mp.replInit();
  muted = false;
  if (raw && kind === "soft") { mp.replProcessChar(1); return; }
  raw = false;
  runFile("main.py");
  if (resetCause) return boot("hard");
  outStr("MicroPython v1.27.0 (VitalNode emulated ESP32); JS with Emscripten\r\nType \"help()\" for more information.\r\n>>> ");
}

process.on("uncaughtException", (e) => {
  process.stderr.write("emu: " + (e.type ? e.type + ": " : "") + (e.message || e) + "\n");
  process.exit(2);
});
await boot("power");
let idleSince = Date.now();
for (;;) {
  if (!input.length) {
    flushOut();
    sync();
    // while the host is quiet, real time still passes for the node (a
    // running watchdog must still bite)
    if (!pump(100)) {
      const now = Date.now();
      try { mp.runPython(`import _emu\n_emu.tick(${(now - idleSince) * 1000 * SPEED})`); }
      catch (e) { if (!resetCause) outStr((e.message || "").replace(/\r?\n/g, "\r\n")); }
      idleSince = now;
      if (resetCause) await boot("hard");
      continue;
    }
    idleSince = Date.now();
  }
  const c = input.shift();
  if (raw && c === 0x05) {            // raw-paste request: not supported here
    while (input.length < 2) pump(-1);
    if (input[0] === 0x41 && input[1] === 0x01) { input.splice(0, 2); outStr("R\x00"); flushOut(); continue; }
  }
  if (c === 0x01) raw = true;
  else if (c === 0x02) raw = false;
  if (c === 0x04 || c === 0x0d) dirty = true;
  const ret = mp.replProcessChar(c);
  if (ret !== 0 || resetCause) {
    flushOut();
    await boot(resetCause ? "hard" : "soft");
  }
}
