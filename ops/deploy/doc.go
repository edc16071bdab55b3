// Package deploy operates twopc on the operator's own hosts over SSH: it
// reads the inventory, installs the binary and each host's generated
// config, starts, stops and inspects the processes, and drives recovery
// drills against the deployed cluster. The mage targets in magefiles/ are
// thin wrappers around Ops, OpenCluster and RunDrill, which runs package
// drill's one drill (its kill or chaos profile) on the deployed cluster,
// after saying that it attacks the live cluster and where its keys go.
//
// # Inventory
//
// One JSON file (example: deploy/inventory.example.json). Top level:
//
//	known_hosts      file the host keys are checked against (default ~/.ssh/known_hosts)
//	peer_token_file  the coordinator's and participants' shared token (default peer.token
//	                 beside the inventory); deploy creates it (0600) if missing. Keep it
//	                 out of version control.
//	client_token_file  optional: a token (file mode 0600, made by the operator) the
//	                 coordinator then demands from clients; status and the drill present it
//	tls_ca           optional; turns TLS on: the CA certificate (PEM) every host's
//	                 certificate must chain to. Every host then needs tls_cert and tls_key.
//	exclude_after    optional: the coordinator's --exclude-after ("5s"): a participant
//	                 silent that long leaves the write set, so that writes go on while a
//	                 host is lost (default: never; writes then fail until it is back or
//	                 replaced)
//	defaults         a host; its fields fill those a host leaves empty
//	hosts            the hosts, each:
//	  name                stable name; also the participant's name in the coordinator's log,
//	                      and, with several coordinators, this one's name in the group
//	  address             what SSH connects to (host name or IP)
//	  user, port          SSH login (port default 22)
//	  key                 private key file (~ and paths relative to the inventory work),
//	                      or "agent": the keys of the SSH agent at $SSH_AUTH_SOCK only
//	  roles               ["coordinator"], ["participant"] or both; 1, 3 or 5 hosts have the
//	                      coordinator role (one coordinator, or a group of 3 or 5)
//	  coordinator_listen  host:port, with the coordinator role
//	  participant_listen  host:port, with the participant role
//	  dir                 remote directory, absolute (see layout.go)
//	  service             auto (default): systemd if the host booted with it and user is root,
//	                      else background; or systemd, or background
//	  tls_cert, tls_key   with tls_ca: the host's certificate (PEM, may carry intermediates)
//	                      and key, on the operator's machine; {name} stands for the host's
//	                      name, so defaults can say "tls/{name}.crt" and "tls/{name}.key"
//	  comment             free text, ignored
//
// Others reach a role at its listen address; 0.0.0.0 means the host's
// address. The whole file is checked before any host is contacted: unknown
// fields, duplicate names, two hosts sharing a directory or a port, a
// number of coordinator hosts other than 1, 3 or 5 (a group of 2 cannot
// lose either, and one of 4 no more than one of 3), no participant, a
// role without its listen address (or the reverse) are all reported at
// once.
//
// # Several coordinators
//
// With 3 or 5 coordinator hosts, each coordinator runs with --name (its
// host's name) and --coordinators (every member's URL), its --log is its
// copy of the raft log, and every participant's --coordinator names
// every member. Once the group has started, it says who its members are,
// not the inventory (group.go): a deploy reads coordinators.list from
// any coordinator that answers (else the installed config), starts a
// coordinator only on a member that has its log, refuses a member whose
// log is gone (a coordinator that lost its disk must come back under a
// new name), and leaves alone a member whose host lost the role until it
// is removed. AddCoordinator, RemoveCoordinator and ReplaceCoordinator
// (coordgroup.go; mage coordinator:add, :remove, :replace) change the
// group, each step checked and skipped when a rerun finds it done; the
// operator edits the inventory first, to what the group should become.
// Status shows each coordinator's role and the group's leader; the
// cluster's view comes from the first coordinator that answers. Where
// the coordinator's log is read (who the participants are, the drill's
// checks), it is the copy, among the coordinators that answer, with the
// highest last index.
//
// # Who the participants are
//
// The inventory's participants are the cluster's only until the
// coordinator has started: from then on its log (join and remove
// records) and the names it was started with say who they are. A deploy
// therefore reads the coordinator hosts first (members.go): a
// participant the log says was removed stays out of --participants and
// is not started on its host, though the inventory still lists it; a
// host new to the inventory gets a participant, but the coordinator
// hears of it only once it has been added and has caught up, never as a
// member with an empty database. ReplaceParticipant (replace.go, mage
// participant:replace OLD NEW) does the adding and removing in the one
// safe order, each step checked, and leaves the coordinator's config
// naming the participants its log has.
//
// # TLS
//
// With tls_ca, every URL is https and both servers run with --tls-cert,
// --tls-key and --tls-ca (see tls.go). Before any host is contacted, the
// files are checked as a peer will check them: each is readable, a key
// is readable by its owner only (mode 0600), each certificate chains to
// tls_ca and covers the name peers reach each of the host's roles at
// (the listen address, or the host's address for 0.0.0.0), and each key
// goes with its certificate; a certificate or CA file holding a private
// key is refused (it is installed readable by all). Every problem is
// reported at once, naming the host and the file. Without a PKI, mage
// deploy:certs (GenerateCerts, certs.go) makes a CA and the hosts'
// certificates where the inventory names them.
//
// # Invariants
//
//   - Host keys are verified against known_hosts, always. An unknown,
//     changed or revoked key stops the work on that host before a byte is
//     sent to it, with the fingerprint and the command that fixes it.
//   - Key material and the peer token never appear in output, errors,
//     command lines or unit files: processes read the token from
//     dir/etc/peer.token and the TLS key from dir/etc/key.pem. Remote
//     files are created with umask 077 (binary 0700; config, tokens and
//     TLS key 0600; certificate and CA 0644), and a file whose mode was
//     changed on the host is installed again by the next deploy.
//   - A binary, config, token or TLS file is replaced by upload to a
//     temporary name and rename, never rewritten in place.
//   - Deploy is idempotent: a process is restarted only when its binary,
//     config, tokens or TLS files changed, started only when it is not
//     running.
//   - Hosts are worked on in parallel; every command prints one line per
//     host and fails if any host failed, naming it.
//   - Every wait is bounded: SSH dial and handshake, each host's whole
//     command, process start and stop, the drill's settling.
//   - A background process is identified by its pidfile and its command
//     line (binary path and role), so a stale pidfile whose pid was reused
//     is never signalled.
//
// Processes run under systemd (a unit per role, Restart=on-failure) where
// the host has it, else as a background process under twopc supervise
// (setsid, pidfiles in dir/run, stdout+stderr appended to dir/log), which
// restarts it after a crash as systemd would: a deployed process is
// supervised in every mode, within the same restart budget. The drill's
// Kill stops the supervisor too, so that only the drill restarts what it
// kills. The processes are named as the coordinator names them
// (coordinator, and each participant by its host's name), in the drill's
// output as in status. The operator's tools
// reach the services through the SSH connection (status, readiness, the
// drill's participant reads, with the peer token added) except the
// drill's load, which goes to the coordinator's public URL directly.
// Over TLS every one of those calls checks the service's certificate
// against tls_ca and the name peers use; the drill's participant proxies
// listen on the operator's loopback in plain http (that leg carries no
// token) and call the participants over https.
package deploy
