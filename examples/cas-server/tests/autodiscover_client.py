"""Outlook-style Autodiscover client for the cas-server interop test.

Posts the standard Outlook POX request to /autodiscover/autodiscover.xml over HTTPS with
requests + requests_ntlm (NTLM, with channel bindings as requests-ntlm sends them) or Basic,
validates the 2006a response the way Outlook reads it, and prints one JSON object with what
it found, for the Rust test to compare with the server's listeners.

Usage: autodiscover_client.py BASE_URL CAFILE USER PASSWORD EMAIL [ntlm|basic]
Exit status: 0 when every check passed, 1 otherwise (the reason on stderr).
"""

import json
import sys
import xml.etree.ElementTree as ET

import requests
from requests_ntlm import HttpNtlmAuth

REQUEST_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
RESPONSE_NS = "http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"
OUTLOOK_NS = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"

REQUEST = (
    '<?xml version="1.0" encoding="utf-8"?>\r\n'
    f'<Autodiscover xmlns="{REQUEST_NS}">\r\n'
    "  <Request>\r\n"
    "    <EMailAddress>{email}</EMailAddress>\r\n"
    f"    <AcceptableResponseSchema>{OUTLOOK_NS}</AcceptableResponseSchema>\r\n"
    "  </Request>\r\n"
    "</Autodiscover>\r\n"
)


class CheckFailed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise CheckFailed(what)


def q(ns, name):
    return "{%s}%s" % (ns, name)


def text(parent, name, ns=OUTLOOK_NS):
    el = parent.find(q(ns, name))
    check(el is not None, f"<{name}> missing in <{parent.tag}>")
    return (el.text or "").strip()


def post(base, cafile, auth, email):
    return requests.post(
        base + "/autodiscover/autodiscover.xml",
        data=REQUEST.replace("{email}", email).encode("utf-8"),
        headers={"Content-Type": "text/xml; charset=utf-8", "User-Agent": "Microsoft Office/16.0"},
        auth=auth,
        verify=cafile,
        timeout=20,
    )


def error_code(resp):
    root = ET.fromstring(resp.content)
    check(root.tag == q(RESPONSE_NS, "Autodiscover"), f"error root is {root.tag}")
    error = root.find(q(RESPONSE_NS, "Response") + "/" + q(RESPONSE_NS, "Error"))
    check(error is not None, "no <Error> in an error response")
    check(error.get("Id") is not None and error.get("Time") is not None, "<Error> lacks Time/Id")
    return text(error, "ErrorCode", RESPONSE_NS), text(error, "Message", RESPONSE_NS)


def protocols(account):
    out = {}
    for p in account.findall(q(OUTLOOK_NS, "Protocol")):
        kind = text(p, "Type")
        out[kind] = {child.tag.split("}")[1]: (child.text or "").strip() for child in p}
    return out


def main():
    base, cafile, user, password, email = sys.argv[1:6]
    method = sys.argv[6] if len(sys.argv) > 6 else "ntlm"
    auth = HttpNtlmAuth(user, password) if method == "ntlm" else (user, password)
    result = {}

    # 1. Anonymous: the router must challenge, offering the configured schemes.
    anon = requests.post(
        base + "/autodiscover/autodiscover.xml",
        data=REQUEST.replace("{email}", email).encode("utf-8"),
        headers={"Content-Type": "text/xml"},
        verify=cafile,
        timeout=20,
    )
    check(anon.status_code == 401, f"anonymous POST got {anon.status_code}, expected 401")
    result["challenges"] = sorted(
        {c.strip().split(" ")[0] for c in anon.headers.get("WWW-Authenticate", "").split(",") if c.strip()}
    )

    # 2. The caller's own settings.
    resp = post(base, cafile, auth, email)
    check(resp.status_code == 200, f"POST got {resp.status_code}: {resp.text[:200]}")
    check(resp.headers.get("Content-Type", "").startswith("text/xml"), "Content-Type is not text/xml")
    root = ET.fromstring(resp.content)
    check(root.tag == q(RESPONSE_NS, "Autodiscover"), f"root is {root.tag}")
    response = root.find(q(OUTLOOK_NS, "Response"))
    check(response is not None, "no 2006a <Response>")
    user_el = response.find(q(OUTLOOK_NS, "User"))
    check(user_el is not None, "no <User>")
    result["user"] = {
        name: text(user_el, name)
        for name in ("DisplayName", "LegacyDN", "AutoDiscoverSMTPAddress", "DeploymentId")
    }
    account = response.find(q(OUTLOOK_NS, "Account"))
    check(account is not None, "no <Account>")
    check(text(account, "AccountType") == "email", "AccountType is not email")
    check(text(account, "Action") == "settings", "Action is not settings")
    protos = protocols(account)
    result["protocols"] = protos
    if "EXPR" in protos:
        expr = protos["EXPR"]
        for field in ("Server", "SSL", "AuthPackage"):
            check(expr.get(field), f"EXPR lacks {field}")
        check(expr["SSL"] in ("On", "Off"), "EXPR SSL is not On/Off")
        check(expr["AuthPackage"] in ("Basic", "Ntlm", "Negotiate"), "EXPR AuthPackage unknown")
        if expr["SSL"] == "On":
            check(expr.get("CertPrincipalName", "").startswith("msstd:"), "EXPR CertPrincipalName")
        check("EXCH" in protos, "EXPR without EXCH")
        for field in ("Server", "ServerDN", "AuthPackage"):
            check(protos["EXCH"].get(field), f"EXCH lacks {field}")
    for kind in ("POP3", "IMAP"):
        if kind in protos:
            p = protos[kind]
            for field in ("Server", "Port", "LoginName", "SPA", "SSL", "Encryption", "AuthRequired"):
                check(p.get(field), f"{kind} lacks {field}")
            check(p["Port"].isdigit(), f"{kind} Port is not a number")
            check(p["Encryption"] in ("SSL", "TLS", "None"), f"{kind} Encryption unknown")

    # 3. Someone else's or an unknown address: error 500, nothing about that user.
    other = post(base, cafile, auth, "no-such-user@" + email.split("@", 1)[1])
    check(other.status_code == 200, f"unknown address got HTTP {other.status_code}")
    result["unknown_address_error"] = error_code(other)

    # 4. Mozilla autoconfig, anonymous.
    cfg = requests.get(
        base + "/.well-known/autoconfig/mail/config-v1.1.xml",
        params={"emailaddress": email},
        verify=cafile,
        timeout=20,
    )
    check(cfg.status_code == 200, f"autoconfig got {cfg.status_code}")
    croot = ET.fromstring(cfg.content)
    check(croot.tag == "clientConfig" and croot.get("version") == "1.1", "not a clientConfig 1.1")
    result["autoconfig"] = [
        {
            "type": s.get("type"),
            "hostname": s.findtext("hostname"),
            "port": s.findtext("port"),
            "socketType": s.findtext("socketType"),
            "authentication": [a.text for a in s.findall("authentication")],
            "username": s.findtext("username"),
        }
        for s in croot.iter("incomingServer")
    ]
    check(croot.find("emailProvider/outgoingServer") is not None, "no outgoingServer")

    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as e:
        print(f"autodiscover check failed: {e}", file=sys.stderr)
        sys.exit(1)
