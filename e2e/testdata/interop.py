"""Interoperability checks with Python's standard xmlrpc.client, the
reference client. Run by e2e/interop_test.go against a real cluster:
    python3 interop.py URL MAX_VALUE_BYTES MAX_KEY_BYTES
Exits non-zero, naming the check, on the first failure."""
import sys
import xmlrpc.client as x

url, max_value, max_key = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = x.ServerProxy(url, allow_none=True)


def check(name, got, want):
    if got != want:
        sys.exit(f"FAIL {name}: got {got!r}, want {want!r}")
    print(f"ok   {name}")


def fault(name, code, call, *args):
    try:
        call(*args)
    except x.Fault as f:
        check(name, f.faultCode, code)
        return
    sys.exit(f"FAIL {name}: no fault, want {code}")


# Strings: unicode, characters XML must escape, CR and CRLF, non-BMP.
for key, value in [
    ("plain", "hello"),
    ("ünïcödé ключ 鍵", "värde – значение – 値"),
    ("<tag>&amp;\"'", "a < b && c > d ]]> 'q' \"qq\""),
    ("emoji 🗝️", "𝄞 music, 😀 face, 🏳️‍🌈 flag"),
    ("  spaces  ", "  leading and trailing  "),
    ("empty", ""),
]:
    check(f"put {key!r}", s.put(key, value), True)
    check(f"get {key!r}", s.get(key), value)

# xmlrpc.client sends CR unescaped, and XML parsers (Python's own server
# too) turn CR and CRLF into LF: such a value arrives normalised. Binary
# keeps bytes exact (see the README).
check("put CR", s.put("cr", "a\rb\r\nc\n"), True)
check("get CR, normalised as XML requires", s.get("cr"), "a\nb\nc\n")

# Binary values round-trip byte-exact and come back as Binary.
blob = bytes(range(256)) * 4
check("put binary", s.put("blob", x.Binary(blob)), True)
got = s.get("blob")
check("get binary type", type(got), x.Binary)
check("get binary bytes", got.data, blob)
check("put empty binary", s.put("blob0", x.Binary(b"")), True)
check("get empty binary", s.get("blob0").data, b"")

# The largest allowed value and key are accepted; one byte more is not.
big = "v" * max_value
check("put largest value", s.put("big", big), True)
check("get largest value", s.get("big"), big)
check("put largest key", s.put("k" * max_key, "v"), True)
fault("value one byte too large", 4, s.put, "big", big + "v")
fault("key one byte too large", 4, s.put, "k" * (max_key + 1), "v")

# delete reports whether the key existed.
check("delete existing", s.delete("plain"), True)
check("delete missing", s.delete("plain"), False)

# MultiCall batches calls; a fault comes back in its place.
m = x.MultiCall(s)
m.put("m1", "one")
m.get("m1")
m.get("nope")
m.delete("m1")
results = m()
check("multicall put", results[0], True)
check("multicall get", results[1], "one")
try:
    results[2]
    sys.exit("FAIL multicall fault: no fault")
except x.Fault as f:
    check("multicall fault code", f.faultCode, 1)
check("multicall delete", results[3], True)

# Introspection.
methods = s.system.listMethods()
for name in ["put", "get", "delete", "txn", "status", "system.listMethods", "system.methodHelp",
             "system.methodSignature", "system.multicall"]:
    check(f"listMethods has {name}", name in methods, True)
check("methodHelp put mentions base64", "base64" in s.system.methodHelp("put"), True)
check("methodSignature put", s.system.methodSignature("put"),
      [["boolean", "string", "string"], ["boolean", "string", "base64"]])

# Every documented fault code with its number.
fault("1 not found", 1, s.get, "missing")
fault("-32601 unknown method", -32601, s.nosuchmethod)
fault("-32602 wrong params", -32602, s.put, "only-a-key")
fault("-32602 wrong type", -32602, s.put, "k", 42)
fault("-32602 empty key", -32602, s.get, "")
fault("-32602 txn unknown op", -32602, s.txn, [], [{"op": "upsert", "key": "k", "value": "v"}])
fault("-32602 txn key written twice", -32602, s.txn, [], [{"op": "put", "key": "k", "value": "1"}, {"op": "delete", "key": "k"}])
fault("4 txn too many ops", 4, s.txn, [], [{"op": "get", "key": "k%d" % i} for i in range(129)])
st = s.status()
check("status participants", len(st["participants"]), 3)
check("status in_doubt is an int", type(st["in_doubt"]), int)


def raw(name, code, body):
    """Send a hand-made body: what a broken or hostile client sends."""
    t = x.Transport()
    try:
        host = url.split("//")[1].split("/")[0]
        t.request(host, "/RPC2", body, verbose=False)
    except x.Fault as f:
        check(name, f.faultCode, code)
        return
    sys.exit(f"FAIL {name}: no fault, want {code}")


raw("-32700 not XML", -32700, b"this is not xml")
raw("-32700 invalid UTF-8", -32700,
    b"<?xml version='1.0'?><methodCall><methodName>get</methodName><params><param>"
    b"<value><string>\xff\xfe</string></value></param></params></methodCall>")
raw("-32600 not a methodCall", -32600, b"<?xml version='1.0'?><methodResponse/>")
print("all interoperability checks passed")
