"""The broker CA folder: certificates chain to the CA, re-running keeps the CA, revocations reach the CRL."""

from __future__ import annotations

import ipaddress
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from server.broker_pki import BrokerFolder, BrokerSetupError, init_ca, issue_client_cert, revoke_device


def load(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_makes_a_ca_and_a_server_certificate_for_the_named_hosts(tmp_path):
    broker = BrokerFolder(tmp_path / "broker")
    init_ca(broker.path, ["broker.example.com", "10.0.0.5"])
    ca, server = load(broker.ca_cert), load(broker.server_cert)
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["broker.example.com"]
    assert names.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5")]
    assert mode(broker.ca_key) == 0o600 and mode(broker.server_key) == 0o640 and mode(broker.passwd) == 0o640
    assert x509.load_pem_x509_crl(broker.crl.read_bytes()).is_signature_valid(ca.public_key())


def test_running_init_again_keeps_the_ca_and_renews_the_server_certificate(tmp_path):
    broker = BrokerFolder(tmp_path)
    init_ca(tmp_path, ["a.example.com"])
    ca_before, server_before = broker.ca_cert.read_bytes(), load(broker.server_cert)
    broker.passwd.write_text("gate-1:$7$1$a$b\n")
    init_ca(tmp_path, ["b.example.com"])
    assert broker.ca_cert.read_bytes() == ca_before
    assert load(broker.server_cert).serial_number != server_before.serial_number
    assert broker.passwd.read_text() == "gate-1:$7$1$a$b\n"  # terminals keep their passwords


def test_client_certificates_name_the_device_and_chain_to_the_ca(tmp_path):
    broker = BrokerFolder(tmp_path)
    init_ca(tmp_path, ["localhost"])
    cert_pem, key_pem = issue_client_cert(broker, "gate-9")
    cert = x509.load_pem_x509_certificate(cert_pem)
    cert.verify_directly_issued_by(load(broker.ca_cert))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "gate-9"
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert b"PRIVATE KEY" in key_pem and b"PRIVATE KEY" not in broker.index.read_bytes()


def test_revoking_a_device_lists_all_its_certificates_in_the_crl(tmp_path):
    broker = BrokerFolder(tmp_path)
    init_ca(tmp_path, ["localhost"])
    first = x509.load_pem_x509_certificate(issue_client_cert(broker, "gate-1")[0])
    other = x509.load_pem_x509_certificate(issue_client_cert(broker, "gate-2")[0])
    assert revoke_device(broker, "gate-1") == 1
    assert revoke_device(broker, "gate-1") == 0
    second = x509.load_pem_x509_certificate(issue_client_cert(broker, "gate-1")[0])
    crl = x509.load_pem_x509_crl(broker.crl.read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(first.serial_number) is not None
    assert crl.get_revoked_certificate_by_serial_number(second.serial_number) is None
    assert crl.get_revoked_certificate_by_serial_number(other.serial_number) is None
    assert crl.next_update_utc >= load(broker.ca_cert).not_valid_after_utc  # never expires before the CA


@pytest.mark.parametrize("host", ["", "bad_host", "-x.example.com", "a..b"])
def test_hosts_that_are_neither_names_nor_addresses_are_refused(tmp_path, host):
    with pytest.raises(BrokerSetupError, match="neither an IP address nor a DNS name"):
        init_ca(tmp_path, [host])


def test_a_folder_without_a_ca_says_how_to_make_one(tmp_path):
    with pytest.raises(BrokerSetupError, match="guardpost mosquitto init-ca"):
        issue_client_cert(BrokerFolder(tmp_path), "gate-1")
