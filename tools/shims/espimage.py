"""The ESP-IDF app image check that `esp32.Partition.set_boot()` runs on
the chip (esp_ota_set_boot_partition -> esp_image_verify), for the shims.

An app image (esp_app_format.h, esp_image_format.c) is a 24-byte header
(magic 0xE9, segment count, flash mode/size, entry point, the extended
header with chip id and `hash_appended`), then the segments, each an
8-byte (load address, length) header and its data, then padding to the
last byte of a 16-byte block holding the checksum (0xEF XOR every data
byte), then, with hash_appended, the SHA-256 of all that.

Checked here: magic, chip id (0 = ESP32), 1..16 segments, segments inside
the partition, checksum, digest. Not checked: load addresses against the
memory map, chip revision range, secure boot signatures (MicroPython's
ESP32 builds do not enable secure boot).

    check(read, size) -> image length or raises ImageInvalid(reason)

read(offset, n) returns n bytes of the partition.
"""
import hashlib

MAGIC = 0xE9
CHIP_ESP32 = 0
MAX_SEGMENTS = 16  # ESP_IMAGE_MAX_SEGMENTS
HEADER_LEN = 24
_CHUNK = 4096


class ImageInvalid(Exception):
    pass


def check(read, size):
    h = read(0, HEADER_LEN)
    if len(h) < HEADER_LEN or h[0] != MAGIC:
        raise ImageInvalid("no app image header (magic)")
    nseg = h[1]
    if not 1 <= nseg <= MAX_SEGMENTS:
        raise ImageInvalid("segment count %d" % nseg)
    if h[12] | (h[13] << 8) != CHIP_ESP32:
        raise ImageInvalid("image is for another chip")
    hashed = h[23] == 1
    sha = hashlib.sha256(h)
    pos = HEADER_LEN
    x = 0xEF
    for _ in range(nseg):
        if pos + 8 > size:
            raise ImageInvalid("segment past the partition's end")
        sh = read(pos, 8)
        n = sh[4] | (sh[5] << 8) | (sh[6] << 16) | (sh[7] << 24)
        if pos + 8 + n > size:
            raise ImageInvalid("segment past the partition's end")
        sha.update(sh)
        pos += 8
        end = pos + n
        while pos < end:
            b = read(pos, min(_CHUNK, end - pos))
            sha.update(b)
            for c in b:
                x ^= c
            pos += len(b)
    pad = 15 - pos % 16
    if pos + pad + 1 + (32 if hashed else 0) > size:
        raise ImageInvalid("image runs past the partition's end")
    tail = read(pos, pad + 1)
    sha.update(tail)
    pos += pad + 1
    if tail[-1] != x:
        raise ImageInvalid("checksum")
    if hashed:
        if read(pos, 32) != sha.digest():
            raise ImageInvalid("SHA-256 digest")
        pos += 32
    return pos
