"""Provisioning for a simulated node: the same key, sub-keys, registry
record and config.json the USB path produces, as an image the simulator
writes straight into the simulated board's NVS and flash
(tools/vm/node.py provision()). There is no serial line to run the
challenge-response over; the registry notes that."""
import json

from tools import hostshims
from tools.provision import keys, site
from tools.provision.registry import Registry


def simulated_node(device_id, registry_path, site_path, gen=1, lockdown=False):
    """(image, config, root key) for `device_id`, recorded active in the
    registry; the image's NVS holds the keystore's record."""
    hostshims.install()
    from firmware.keystore import NAMESPACE, encode
    s = site.load_site(site_path)
    cfg = site.device_config(s, device_id)
    root = keys.new_root()
    with Registry(registry_path) as reg:
        reg.begin(device_id, gen, keys.subkeys(root, device_id), "simulated ESP32", lockdown)
        reg.activate(device_id)
        reg.note(device_id, "simulated", "written into the simulated board, no serial line")
    image = {"nvs": {NAMESPACE: encode(root, gen, lockdown)},
             "files": {"config.json": json.dumps(cfg)}}
    return image, cfg, root
