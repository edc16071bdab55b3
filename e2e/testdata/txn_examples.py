"""The README's two txn examples, run against a real cluster by
e2e/interop_test.go: python3 txn_examples.py URL"""
import sys
import xmlrpc.client

s = xmlrpc.client.ServerProxy(sys.argv[1])

# Compare-and-swap: set "config" to v2 only if it still holds v1.
s.put("config", "v1")
r = s.txn([{"key": "config", "target": "value", "op": "==", "value": "v1"}],
          [{"op": "put", "key": "config", "value": "v2"}],
          [{"op": "get", "key": "config"}])
print(r)                      # {'results': [{'version': 2}], 'succeeded': True}
r = s.txn([{"key": "config", "target": "value", "op": "==", "value": "v1"}],
          [{"op": "put", "key": "config", "value": "v2"}],
          [{"op": "get", "key": "config"}])
print(r["succeeded"], r["results"][0]["value"])   # False v2: someone changed it first


# A transfer between two accounts that keeps the total: read both with
# their versions, then write both only if neither changed meanwhile.
def transfer(s, src, dst, amount):
    while True:
        a, b = s.txn([], [{"op": "get", "key": src}, {"op": "get", "key": dst}])["results"]
        if int(a["value"]) < amount:
            raise ValueError("insufficient funds")
        r = s.txn([{"key": src, "target": "version", "op": "==", "value": a["version"]},
                   {"key": dst, "target": "version", "op": "==", "value": b["version"]}],
                  [{"op": "put", "key": src, "value": str(int(a["value"]) - amount)},
                   {"op": "put", "key": dst, "value": str(int(b["value"]) + amount)}])
        if r["succeeded"]:
            return


s.put("alice", "100")
s.put("bob", "0")
transfer(s, "alice", "bob", 30)
print(s.get("alice"), s.get("bob"))   # 70 30

assert s.get("config") == "v2" and (s.get("alice"), s.get("bob")) == ("70", "30")
print("txn examples ok")
