"""A local update server for OTA bundles (plain HTTP on the LAN or loopback;
integrity comes from the signature, not the transport - put it behind TLS
for confidentiality).

Serves <bundle>/manifest.vnm, files/..., image.bin; for a device-bound
bundle also binding/<device id> = HMAC-SHA256(the device's ota-bind
sub-key from the registry, SHA-256 of the signed manifest) - only for an
active device the signed manifest names (the node checks that name itself,
whatever the server says). Logs every request with its size (progress).
"""
import hashlib
import http.server
import threading
from pathlib import Path


def binding_tag(registry_path, device_id, envelope):
    """The per-device binding (HMAC-SHA256 with the device's ota-bind key of
    its current generation); RegistryError for unknown or revoked devices."""
    import hmac

    from tools.provision.registry import Registry, RegistryError
    from tools.ota.bundle import _device
    otamanifest = _device()
    digest = otamanifest.signed_digest(envelope)
    from firmware.sjson import JsonError, loads
    try:  # the server's own bundle: its signed part names the devices it is for
        named = loads(envelope[len(otamanifest.MAGIC) + otamanifest.SIG_LEN:]).get("devices") or ()
    except (JsonError, AttributeError):
        named = ()
    if device_id not in named:
        raise RegistryError("the bundle does not name device %s" % device_id)
    reg = Registry(registry_path)  # per request: sqlite objects stay in their thread
    if not reg.is_active(device_id):
        raise RegistryError("device %s is not active" % device_id)
    key = reg.key(device_id, "ota-bind")
    return hmac.new(key, digest, hashlib.sha256).digest()


def make_server(bundle_dir, host="127.0.0.1", port=8070, registry=None, log=print):
    root = Path(bundle_dir).resolve()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def do_GET(self):
            name = self.path.lstrip("/")
            body = None
            if name.startswith("binding/") and registry is not None:
                try:
                    body = binding_tag(registry, name[8:], (root / "manifest.vnm").read_bytes())
                except Exception as e:  # noqa: BLE001 - unknown device, revoked, no key: no binding
                    log("ota-serve: no binding for %s: %s" % (name[8:], e))
                    body = None
            else:
                p = (root / name).resolve()
                if p.is_file() and root in p.parents:
                    body = p.read_bytes()
            if body is None:
                self.send_error(404)
                log("ota-serve: %s -> 404" % name)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            log("ota-serve: %s -> %d bytes to %s" % (name, len(body), self.client_address[0]))

        def log_message(self, *a):
            pass

    return http.server.ThreadingHTTPServer((host, port), Handler)


def serve_in_thread(bundle_dir, registry=None, log=lambda s: None):
    """For tests: a server on a free loopback port; returns (server, base URL)."""
    srv = make_server(bundle_dir, port=0, registry=registry, log=log)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, "http://127.0.0.1:%d/" % srv.server_address[1]
