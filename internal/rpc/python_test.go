package rpc

import (
	"context"
	"net/http/httptest"
	"os/exec"
	"testing"
	"time"
)

// pythonClient exercises the server with Python's xmlrpc.client, the
// project's reference client. It exits non-zero, saying why, on the first
// mismatch.
const pythonClient = `
import datetime, sys, xmlrpc.client

def check(name, got, want):
    if got != want or type(got) is not type(want):
        sys.exit(f"{name}: got {got!r}, want {want!r}")

def expect_fault(name, call, code):
    try:
        got = call()
    except xmlrpc.client.Fault as f:
        if f.faultCode != code or not f.faultString:
            sys.exit(f"{name}: got fault {f.faultCode} {f.faultString!r}, want {code}")
        return
    sys.exit(f"{name}: got {got!r}, want fault {code}")

for url in sys.argv[1:]:
    p = xmlrpc.client.ServerProxy(url, allow_none=True, use_builtin_types=True)
    s = "  héllo 😀 𝄞 <&> ]]> \"'\n\ttab  "
    check("string", p.first(s), s)
    check("empty string", p.first(""), "")
    check("binary", p.first(b"\x00\x01\xff"), b"\x00\x01\xff")
    blob = bytes(range(256)) * 10  # sent with line breaks every 76 chars
    check("long binary", p.first(blob), blob)
    check("empty binary", p.first(b""), b"")
    check("int", p.first(-2147483648), -2147483648)
    check("add", p.add(40, 2), 42)
    check("i8 result", p.big(), 1 << 40)
    check("double", p.first(0.1), 0.1)
    check("bool", p.first(True), True)
    check("none", p.first(None), None)
    when = datetime.datetime(2024, 2, 29, 23, 59, 58)
    check("datetime", p.first(when), when)
    st = {"a": 1, "b": [1, "x", None, b"z"], "c": {"d": "e", "": "empty name"}, "<&>": "k"}
    check("struct", p.first(st), st)
    check("array", p.first([1, "two", 3.5, [True]]), [1, "two", 3.5, [True]])
    check("echo", p.echo("a", 1), ["a", 1])
    check("CR from server", p.crlf(), "a\r\nb\rc ]]> <&>")
    expect_fault("application fault", lambda: p.fail(2), 2)
    expect_fault("unknown method", lambda: p.nope(), -32601)
    expect_fault("wrong params", lambda: p.add("1", 2), -32602)

    mc = xmlrpc.client.MultiCall(p)
    mc.add(1, 2)
    mc.fail(1)
    mc.first(b"bin")
    r = mc()
    check("multicall 0", r[0], 3)
    expect_fault("multicall 1", lambda: r[1], 1)
    check("multicall 2", r[2], b"bin")

    names = p.system.listMethods()
    for want in ["add", "first", "system.listMethods", "system.methodHelp", "system.methodSignature", "system.multicall"]:
        if want not in names:
            sys.exit(f"listMethods: {want} missing from {names!r}")
    check("listMethods sorted", names, sorted(names))
    check("methodSignature", p.system.methodSignature("add"), [["int", "int", "int"]])
    check("methodSignature undef", p.system.methodSignature("echo"), "undef")
    check("methodHelp", p.system.methodHelp("add"), "Adds two ints.")
print("ok")
`

func TestPythonClient(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatalf("python3 is needed for the interoperability test: %v", err)
	}
	s := NewServer(Limits{}, nil)
	for _, m := range testMethods() {
		s.Register(m)
	}
	s.Register(Method{Name: "crlf", Handler: func(context.Context, []any) (any, error) { return "a\r\nb\rc ]]> <&>", nil }})
	s.Register(Method{Name: "big", Handler: func(context.Context, []any) (any, error) { return int64(1) << 40, nil }})
	ts := httptest.NewServer(s)
	defer ts.Close()

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	// No path means /RPC2 to Python; the second URL uses "/".
	out, err := exec.CommandContext(ctx, python, "-c", pythonClient, ts.URL, ts.URL+"/").CombinedOutput()
	if err != nil {
		t.Fatalf("python3 client: %v\n%s", err, out)
	}
	if string(out) != "ok\n" {
		t.Errorf("python3 client said %q", out)
	}
}
