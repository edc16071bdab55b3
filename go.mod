module github.com/twopc/twopc

go 1.26.8

require (
	github.com/kolo/xmlrpc v0.0.0-20220921171641-a4b6fa1dd06b
	github.com/mattn/go-sqlite3 v1.14.53
)

require (
	github.com/anishathalye/porcupine v1.3.1 // indirect
	github.com/magefile/mage v1.17.2 // indirect
	golang.org/x/crypto v0.58.0 // indirect
)

tool github.com/magefile/mage
