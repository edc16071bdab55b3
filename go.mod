module github.com/twopc/twopc

go 1.26.8

require (
	github.com/kolo/xmlrpc v0.0.0-20220921171641-a4b6fa1dd06b
	github.com/mattn/go-sqlite3 v1.14.53
)
