package deploy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// KeyAgent as a host's key means: authenticate with the SSH agent only.
const KeyAgent = "agent"

// Roles a host can have.
const (
	RoleCoordinator = "coordinator"
	RoleParticipant = "participant"
)

// Service managers a host can be run under (Host.Service).
const (
	ServiceAuto       = "auto"       // systemd if the host booted with it and we are root, else background
	ServiceSystemd    = "systemd"    // a systemd unit per role
	ServiceBackground = "background" // setsid + pidfile + log file
)

// Inventory is the operator's description of the hosts, read from one
// JSON file (see deploy/inventory.example.json and doc.go).
type Inventory struct {
	Comment    string `json:"comment,omitempty"`
	KnownHosts string `json:"known_hosts"` // default ~/.ssh/known_hosts
	// PeerTokenFile holds the token the coordinator and participants
	// share (default peer.token beside the inventory); deploy creates it.
	PeerTokenFile string `json:"peer_token_file"`
	// ClientTokenFile, if set, holds the token clients must present to
	// the coordinator; the operator creates it (mode 0600).
	ClientTokenFile string `json:"client_token_file"`
	// TLSCA, if set, turns TLS on: the CA certificate file (PEM) every
	// host's certificate must chain to; see tls.go.
	TLSCA string `json:"tls_ca"`
	// ExcludeAfter, if set, is the coordinator's --exclude-after (a Go
	// duration): a participant silent that long leaves the write set, so
	// that writes go on without it. Default: never.
	ExcludeAfter string `json:"exclude_after"`
	Defaults     Host   `json:"defaults"` // fills fields a host leaves empty
	Hosts        []Host `json:"hosts"`

	path string // the file it was read from, for messages
}

// Host is one machine (or one SSH endpoint) and what runs on it.
type Host struct {
	Comment           string   `json:"comment,omitempty"`
	Name              string   `json:"name"`    // also the participant's name in the coordinator's log: keep it stable
	Address           string   `json:"address"` // what SSH connects to
	User              string   `json:"user"`
	Port              int      `json:"port"` // SSH port, default 22
	Key               string   `json:"key"`  // private key file, or "agent": the SSH agent only
	Roles             []string `json:"roles"`
	CoordinatorListen string   `json:"coordinator_listen"` // host:port, required with the coordinator role
	ParticipantListen string   `json:"participant_listen"` // host:port, required with the participant role
	Dir               string   `json:"dir"`                // remote directory, absolute
	Service           string   `json:"service"`            // auto (default), systemd or background
	// TLSCert and TLSKey are the host's certificate and key files on the
	// operator's machine, with tls_ca; {name} stands for the host's name.
	TLSCert string `json:"tls_cert"`
	TLSKey  string `json:"tls_key"`
}

// Has reports whether h has role.
func (h Host) Has(role string) bool { return slices.Contains(h.Roles, role) }

// SSHAddr is the host:port SSH dials.
func (h Host) SSHAddr() string { return net.JoinHostPort(h.Address, strconv.Itoa(h.Port)) }

// Listen is the listen address of role on h.
func (h Host) Listen(role string) string {
	if role == RoleCoordinator {
		return h.CoordinatorListen
	}
	return h.ParticipantListen
}

// URL is where others reach role on h: the listen address, with an
// unspecified IP (0.0.0.0, ::, empty) replaced by the host's address.
func (h Host) URL(role string) string {
	return h.scheme() + "://" + reachable(h.Listen(role), h.Address) + "/RPC2"
}

// LocalURL is role's URL as seen from h itself, which is how the operator's
// tools reach it (through the SSH connection, so no port has to be open).
// Over TLS they check the certificate against ServerName(role), the name
// in URL, since the local address may be one the certificate does not name.
func (h Host) LocalURL(role string) string {
	return h.scheme() + "://" + reachable(h.Listen(role), "127.0.0.1") + "/RPC2"
}

// ServerName is the host part of URL(role): the name peers check role's
// certificate against.
func (h Host) ServerName(role string) string {
	name, _, _ := net.SplitHostPort(reachable(h.Listen(role), h.Address))
	return name
}

// scheme is https when the host has a certificate; the inventory check
// makes that all hosts or none.
func (h Host) scheme() string {
	if h.TLSCert != "" {
		return "https"
	}
	return "http"
}

func reachable(listen, fallback string) string {
	host, port, _ := net.SplitHostPort(listen)
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = fallback
	}
	return net.JoinHostPort(host, port)
}

// ErrInventory marks every problem found in the inventory file.
var ErrInventory = errors.New("inventory")

// LoadInventory reads and checks the inventory at path. Relative key and
// known_hosts paths are relative to the file; ~ is the user's home.
func LoadInventory(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (copy deploy/inventory.example.json and edit it)", ErrInventory, err)
	}
	inv, err := ParseInventory(data, filepath.Dir(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	inv.path = path
	return inv, nil
}

// ParseInventory decodes and checks an inventory; base resolves relative
// paths. Every problem is reported at once, so one edit fixes them all.
func ParseInventory(data []byte, base string) (*Inventory, error) {
	inv, errs := decodeInventory(data)
	if inv == nil {
		return nil, inventoryError(errs)
	}
	home, _ := os.UserHomeDir()
	if inv.KnownHosts == "" {
		inv.KnownHosts = "~/.ssh/known_hosts"
	}
	inv.KnownHosts = expand(inv.KnownHosts, home, base)
	if inv.PeerTokenFile == "" {
		inv.PeerTokenFile = "peer.token"
	}
	inv.PeerTokenFile = expand(inv.PeerTokenFile, home, base)
	if inv.ClientTokenFile != "" {
		inv.ClientTokenFile = expand(inv.ClientTokenFile, home, base)
	}
	if inv.TLSCA != "" {
		inv.TLSCA = expand(inv.TLSCA, home, base)
	}
	for i := range inv.Hosts {
		h := &inv.Hosts[i]
		fill(h, inv.Defaults)
		if h.Key != "" && h.Key != KeyAgent {
			h.Key = expand(h.Key, home, base)
		}
		for _, f := range []*string{&h.TLSCert, &h.TLSKey} {
			if *f != "" {
				*f = expand(strings.ReplaceAll(*f, "{name}", h.Name), home, base)
			}
		}
	}
	errs = append(errs, inv.check()...)
	errs = append(errs, inv.checkTLSFields()...)
	if len(errs) > 0 {
		return nil, inventoryError(errs)
	}
	return inv, nil
}

// inventoryError reports every problem, one per line.
func inventoryError(errs []error) error {
	if len(errs) == 1 {
		return fmt.Errorf("%w: %w", ErrInventory, errs[0])
	}
	var b strings.Builder
	for _, e := range errs {
		b.WriteString("\n  " + e.Error())
	}
	return fmt.Errorf("%w: %d problems:%s", ErrInventory, len(errs), b.String())
}

func fill(h *Host, d Host) {
	def := func(v *string, dv string) {
		if *v == "" {
			*v = dv
		}
	}
	def(&h.User, d.User)
	def(&h.Key, d.Key)
	def(&h.Dir, d.Dir)
	def(&h.Service, d.Service)
	def(&h.Service, ServiceAuto)
	def(&h.TLSCert, d.TLSCert)
	def(&h.TLSKey, d.TLSKey)
	if h.Port == 0 {
		h.Port = d.Port
	}
	if h.Port == 0 {
		h.Port = 22
	}
	if h.Roles == nil {
		h.Roles = d.Roles
	}
}

func expand(p, home, base string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok && home != "" {
		return filepath.Join(home, rest)
	}
	if !filepath.IsAbs(p) {
		return filepath.Join(base, p)
	}
	return p
}

// nameRE keeps names safe in unit names, file names and --participants.
var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// dirRE keeps remote directories free of anything a shell would interpret.
var dirRE = regexp.MustCompile(`^/[A-Za-z0-9._/-]+$`)

func (inv *Inventory) check() []error {
	var errs []error
	bad := func(h Host, format string, a ...any) {
		errs = append(errs, fmt.Errorf("host %q: %s", h.Name, fmt.Sprintf(format, a...)))
	}
	if len(inv.Hosts) == 0 {
		errs = append(errs, errors.New("no hosts"))
	}
	names := map[string]bool{}
	dirs := map[string]string{}    // address+dir -> host: two hosts must not share files
	listens := map[string]string{} // ip:port -> host/role, per machine address
	coordinators, participants := 0, 0
	for _, h := range inv.Hosts {
		if !nameRE.MatchString(h.Name) {
			bad(h, "name must be lower-case letters, digits, - or _ (at most 63)")
		}
		if names[h.Name] {
			bad(h, "name used twice")
		}
		names[h.Name] = true
		if h.Address == "" || strings.ContainsAny(h.Address, " /@") {
			bad(h, "address %q: want a host name or IP", h.Address)
		}
		if h.Key == "" {
			bad(h, "no SSH key: set key to a private key file, or to \"agent\" to use the SSH agent only")
		}
		if h.User == "" {
			bad(h, "no SSH user (set user on the host or in defaults)")
		}
		if h.Port < 1 || h.Port > 65535 {
			bad(h, "SSH port %d out of range", h.Port)
		}
		if !dirRE.MatchString(h.Dir) || strings.Contains(h.Dir, "..") || h.Dir == "/" {
			bad(h, "dir %q: want an absolute path of letters, digits, . _ - /", h.Dir)
		}
		if other, ok := dirs[h.Address+h.Dir]; ok {
			bad(h, "same address and dir as host %q: they would overwrite each other", other)
		}
		dirs[h.Address+h.Dir] = h.Name
		switch h.Service {
		case ServiceAuto, ServiceSystemd, ServiceBackground:
		default:
			bad(h, "service %q: want auto, systemd or background", h.Service)
		}
		if len(h.Roles) == 0 {
			bad(h, "no roles (want coordinator and/or participant)")
		}
		for _, r := range h.Roles {
			switch r {
			case RoleCoordinator:
				coordinators++
			case RoleParticipant:
				participants++
			default:
				bad(h, "unknown role %q (want coordinator or participant)", r)
			}
		}
		for _, r := range []string{RoleCoordinator, RoleParticipant} {
			l := h.Listen(r)
			switch {
			case h.Has(r) && l == "":
				bad(h, "role %s but no %s_listen", r, r)
			case !h.Has(r) && l != "":
				bad(h, "%s_listen set but the host does not have the %s role", r, r)
			case l != "":
				_, port, err := net.SplitHostPort(l)
				if p, perr := strconv.Atoi(port); err != nil || perr != nil || p < 1 || p > 65535 {
					bad(h, "%s_listen %q: want host:port", r, l)
					continue
				}
				k := h.Address + " " + reachable(l, h.Address)
				if other, ok := listens[k]; ok {
					bad(h, "%s_listen %s already used by %s", r, l, other)
				}
				listens[k] = h.Name + "/" + r
			}
		}
	}
	switch coordinators {
	case 1, 3, 5:
	case 2, 4:
		errs = append(errs, fmt.Errorf("want 1, 3 or 5 hosts with the coordinator role, found %d: a group of %d stops if %d of them are lost, as one of %d does, "+
			"and a group of 2 cannot lose either (to put a coordinator on a new host, give it the role and take the role off the host it replaces, in one edit: see mage coordinator:replace)",
			coordinators, coordinators, coordinators/2, coordinators-1))
	default:
		errs = append(errs, fmt.Errorf("want 1, 3 or 5 hosts with the coordinator role, found %d", coordinators))
	}
	if participants == 0 {
		errs = append(errs, errors.New("want at least one host with the participant role"))
	}
	if d, err := time.ParseDuration(inv.ExcludeAfter); inv.ExcludeAfter != "" && (err != nil || d < 0) {
		errs = append(errs, fmt.Errorf("exclude_after %q: want a duration such as \"5s\" or \"500ms\"", inv.ExcludeAfter))
	}
	return errs
}

// Coordinator is the first host with the coordinator role (check
// ensures there is one): the only one, unless Several.
func (inv *Inventory) Coordinator() Host {
	for _, h := range inv.Hosts {
		if h.Has(RoleCoordinator) {
			return h
		}
	}
	panic("deploy: inventory without a coordinator passed its check")
}

// Coordinators are the hosts with the coordinator role, in file order.
func (inv *Inventory) Coordinators() []Host {
	var out []Host
	for _, h := range inv.Hosts {
		if h.Has(RoleCoordinator) {
			out = append(out, h)
		}
	}
	return out
}

// Several says whether the inventory runs a group of coordinators (3 or
// 5), each under its host's name, rather than one of its own.
func (inv *Inventory) Several() bool { return len(inv.Coordinators()) > 1 }

// host is the inventory's host called name.
func (inv *Inventory) host(name string) (Host, bool) {
	i := slices.IndexFunc(inv.Hosts, func(h Host) bool { return h.Name == name })
	if i < 0 {
		return Host{}, false
	}
	return inv.Hosts[i], true
}

// Participants are the hosts with the participant role, in file order.
func (inv *Inventory) Participants() []Host {
	var out []Host
	for _, h := range inv.Hosts {
		if h.Has(RoleParticipant) {
			out = append(out, h)
		}
	}
	return out
}

// Select returns the hosts a target names: "all" (or empty), a role, a
// host name, or HOST/ROLE (that role only, on that host: stop the
// coordinator of a host that runs a participant too). An unknown target
// is an error, never an empty selection.
func (inv *Inventory) Select(target string) ([]Host, error) {
	if name, role, ok := strings.Cut(target, "/"); ok {
		h, found := inv.host(name)
		switch {
		case role != RoleCoordinator && role != RoleParticipant:
			return nil, fmt.Errorf("%w: %q: want HOST/coordinator or HOST/participant", ErrInventory, target)
		case !found:
			return nil, fmt.Errorf("%w: %q: no host %s", ErrInventory, target, name)
		case !h.Has(role):
			return nil, fmt.Errorf("%w: %q: %s does not have the %s role", ErrInventory, target, name, role)
		}
		return []Host{h}, nil
	}
	switch target {
	case "", "all":
		return inv.Hosts, nil
	case RoleCoordinator:
		return inv.Coordinators(), nil
	case RoleParticipant:
		return inv.Participants(), nil
	}
	for _, h := range inv.Hosts {
		if h.Name == target {
			return []Host{h}, nil
		}
	}
	var names []string
	for _, h := range inv.Hosts {
		names = append(names, h.Name)
	}
	return nil, fmt.Errorf("%w: %q is not all, coordinator, participant or a host (%s)", ErrInventory, target, strings.Join(names, ", "))
}

// participantsFlag is the coordinator's --participants value: the
// inventory's participants that m admits, in file order.
func (inv *Inventory) participantsFlag(m membership) string {
	var parts []string
	for _, h := range inv.Participants() {
		if m.leftOut(h.Name) == "" {
			parts = append(parts, h.Name+"="+h.URL(RoleParticipant))
		}
	}
	return strings.Join(parts, ",")
}
