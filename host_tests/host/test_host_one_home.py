"""Host-side pieces with one home each: the check that a certificate file
holds an RSA key (the site CA and the broker's server certificate: the
nodes' TLS is RSA-only) lives in tools/provision/site.py, and the ESP app
descriptor's magic in tools/flash.py; the broker and the OTA builder use
those, not copies."""
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tools import broker, flash
from tools.ota import bundle
from tools.provision import site


def _cert(key):
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "t")])
    t = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(t).not_valid_after(t + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


def test_an_rsa_certificate_passes_and_an_ec_missing_or_garbled_one_does_not(tmp_path):
    good, old, junk = tmp_path / "rsa.pem", tmp_path / "ec.pem", tmp_path / "junk.pem"
    good.write_bytes(_cert(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    old.write_bytes(_cert(ec.generate_private_key(ec.SECP256R1())))
    junk.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    assert site.rsa_cert_file(good) is True
    assert [site.rsa_cert_file(p) for p in (old, junk, tmp_path / "absent.pem")] == [False] * 3


def test_the_broker_and_the_ota_builder_use_the_one_home():
    assert broker.rsa_cert_file is site.rsa_cert_file
    assert not hasattr(broker, "_rsa_cert") and not hasattr(site, "_rsa_ca")
    assert bundle.APP_DESC_MAGIC is flash.APP_DESC_MAGIC
    assert flash.APP_DESC_MAGIC == 0xABCD5432  # ESP-IDF's esp_app_desc_t.magic_word (ESP_APP_DESC_MAGIC_WORD)
