// Package ssh is the provider for bare-metal hosts reached over SSH
// (provider type "ssh"). A machine is one HOST:PORT of a pool template's
// hosts; creating it runs the agent's install there over SSH, deleting it
// runs the uninstall.
//
// Trust: every host's key is pinned in the account's host_key_fingerprints
// ({"HOST:PORT": "SHA256:..."}, as `ssh-keygen -lf` prints them). A host
// without a pin, or whose keys all differ from it, is refused with
// KindHostKey before authentication, so nothing is ever run there; there
// is no trust on first use.
//
// What a host holds lives on the host itself, below the install root
// ($WHARF_ROOT, default /): the directory var/lib/wharf-agent exists once a
// host is taken; wharf-machine.tags in it holds the machine's tags
// (wharf-cluster, wharf-pool, wharf-machine), written by Create before the
// install; machine-id is written by the install (install.sh --machine-id)
// and means installed. A host is free when the directory does not exist:
// a host with an agent installed by hand is never taken over. Creating
// takes a host with mkdir of that directory, which is atomic, so two
// creates never take one host.
//
// The hosts this provider answers for are the account's pinned hosts (it
// may reach no others): List scans all of them, which needs no template
// and survives a hub restart; it leaves out the hosts it cannot read.
//
// Commands run with sh; for a user other than root they run through
// `sudo -n`, so that user needs passwordless sudo.
package ssh

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/wharf-platform/wharf/providers"
)

func init() {
	providers.Register("ssh", func(a providers.Account) (providers.Provider, error) {
		return New(a, Options{})
	})
}

// Options tune a Provider; the zero value is the default.
type Options struct {
	// DialTimeout bounds the TCP connect and the SSH handshake to one host
	// (0 = 10 s).
	DialTimeout time.Duration
	// CommandTimeout bounds a short command: reading or taking a host,
	// the uninstall (0 = 2 min).
	CommandTimeout time.Duration
	// InstallTimeout bounds the install run by Create (0 = 15 min); the
	// caller's context may end it sooner.
	InstallTimeout time.Duration
	// Parallel is how many hosts List and Create read at once (0 = 8).
	Parallel int
	// Logger receives what the provider does on hosts (nil = discard).
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	o.DialTimeout = cmp.Or(o.DialTimeout, 10*time.Second)
	o.CommandTimeout = cmp.Or(o.CommandTimeout, 2*time.Minute)
	o.InstallTimeout = cmp.Or(o.InstallTimeout, 15*time.Minute)
	o.Parallel = cmp.Or(o.Parallel, 8)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Provider drives the hosts of one ssh account. It is safe for concurrent
// use; operations on one host are serialized.
type Provider struct {
	user    string
	signer  ssh.Signer
	credErr error             // set when the credentials are unusable; every call returns it
	pins    map[string]string // HOST:PORT -> "SHA256:..."
	hosts   []string          // the pinned hosts, sorted
	opts    Options
	log     *slog.Logger

	mu       sync.Mutex
	locks    map[string]*sync.Mutex // per host
	installs map[string]string      // machine id -> the host its install began on
	algos    map[string][]string    // per host, the host key algorithms whose key matched its pin
}

var _ providers.Provider = (*Provider)(nil)

// New makes a Provider for an ssh account. Unusable credentials do not
// fail New: Check and every other call report them (KindBadCredentials),
// so that the hub can open every account it holds and show what is wrong.
func New(acct providers.Account, opts Options) (*Provider, error) {
	if acct.Type != "" && acct.Type != "ssh" {
		return nil, fmt.Errorf("ssh provider: account %q is of type %q", acct.Name, acct.Type)
	}
	opts = opts.withDefaults()
	p := &Provider{
		user:     acct.Credentials.User,
		pins:     map[string]string{},
		opts:     opts,
		log:      opts.Logger.With("component", "provider-ssh", "account", acct.Name),
		locks:    map[string]*sync.Mutex{},
		installs: map[string]string{},
		algos:    map[string][]string{},
	}
	p.credErr = p.parseCredentials(acct.Credentials)
	return p, nil
}

// parseCredentials checks and keeps the user, key and pins. Messages name
// the key that is wrong, never a value.
func (p *Provider) parseCredentials(c providers.Credentials) error {
	bad := func(msg string, err error) error {
		return &providers.Error{Kind: providers.KindBadCredentials, Message: msg, Err: err}
	}
	if c.User == "" {
		return bad("credentials: user is required", nil)
	}
	if c.PrivateKey == "" {
		return bad("credentials: private_key is required", nil)
	}
	signer, err := ssh.ParsePrivateKey([]byte(c.PrivateKey))
	var pass *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &pass):
		return bad("credentials: private_key is encrypted; give it without a passphrase", nil)
	case err != nil:
		// The parser's message could quote part of the key: keep only ours.
		return bad("credentials: private_key is not a PEM private key (OpenSSH, PKCS#1, PKCS#8 or SEC 1)", nil)
	}
	p.signer = signer
	if len(c.HostKeyFingerprints) == 0 {
		return bad("credentials: host_key_fingerprints is required (HOST:PORT -> SHA256:...)", nil)
	}
	for host, fp := range c.HostKeyFingerprints {
		if i := strings.LastIndexByte(host, ':'); i <= 0 || i == len(host)-1 {
			return bad(fmt.Sprintf("credentials: host_key_fingerprints: %q: want HOST:PORT", host), nil)
		}
		norm, ok := normalizeFingerprint(fp)
		if !ok {
			return bad(fmt.Sprintf("credentials: host_key_fingerprints[%q]: want SHA256:... as ssh-keygen -lf prints it", host), nil)
		}
		p.pins[host] = norm
		p.hosts = append(p.hosts, host)
	}
	slices.Sort(p.hosts)
	return nil
}

// normalizeFingerprint takes "SHA256:xxx", or a whole `ssh-keygen -lf`
// line ("256 SHA256:xxx comment (ED25519)"), and returns "SHA256:xxx"
// without base64 padding, as ssh.FingerprintSHA256 writes it.
func normalizeFingerprint(s string) (string, bool) {
	for _, f := range strings.Fields(s) {
		if rest, ok := strings.CutPrefix(f, "SHA256:"); ok {
			rest = strings.TrimRight(rest, "=")
			if len(rest) != 43 { // 32 bytes, unpadded base64
				return "", false
			}
			return "SHA256:" + rest, true
		}
	}
	return "", false
}

// hostLock serializes the operations on one host.
func (p *Provider) hostLock(host string) *sync.Mutex {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.locks[host]
	if l == nil {
		l = &sync.Mutex{}
		p.locks[host] = l
	}
	return l
}

// Check validates the credentials: the key parses, the user and pins are
// there. It needs no network: there is no account-wide endpoint to ask.
func (p *Provider) Check(ctx context.Context) error {
	return p.credErr
}

// Shape is unknown for bare metal until the agent reports its host.
func (p *Provider) Shape(ctx context.Context, t providers.Template) (providers.Resources, bool, error) {
	return providers.Resources{}, false, nil
}

// Create installs the agent on one host of req.Template.Hosts: the host
// already holding req.MachineID if there is one (then it is returned as is
// when installed, and installed again when a previous install did not
// finish), else the first free host, in the template's order. The install
// runs the runcmd of req.UserData (a #cloud-config document) or, when it
// is a script (#!), the script. A host whose key or login is refused fails
// the create (KindHostKey, KindBadCredentials); an unreachable one is
// skipped unless this provider began the machine's install there. No free
// host left is KindQuota, or KindUnavailable while a host is unreachable.
func (p *Provider) Create(ctx context.Context, req providers.CreateRequest) (providers.Machine, error) {
	if p.credErr != nil {
		return providers.Machine{}, p.credErr
	}
	script, err := installScript(req.UserData)
	if err != nil {
		return providers.Machine{}, &providers.Error{Kind: providers.KindBadRequest, Message: err.Error()}
	}
	tags, err := machineTags(req)
	if err != nil {
		return providers.Machine{}, &providers.Error{Kind: providers.KindBadRequest, Message: err.Error()}
	}
	hosts := req.Template.Hosts
	if len(hosts) == 0 {
		return providers.Machine{}, &providers.Error{Kind: providers.KindBadRequest, Message: "template: ssh needs hosts"}
	}

	states, errs := p.readHosts(ctx, hosts)
	for i, st := range states {
		switch {
		case errs[i] != nil || !st.holds(req.MachineID):
		case st.installed == req.MachineID:
			return st.machine(hosts[i]), nil
		default: // taken for it, but the install did not finish
			return p.install(ctx, hosts[i], req.MachineID, tags, script, true)
		}
	}
	// A host that refused its key or this user needs an admin: fail. One
	// that cannot be reached is skipped, unless this provider began this
	// machine's install there (its answer lost): then it waits for that
	// host rather than install a second copy elsewhere.
	var down error
	for i, err := range errs {
		switch k := providers.KindOf(err); {
		case err == nil:
		case k == providers.KindHostKey || k == providers.KindBadCredentials:
			return providers.Machine{}, fmt.Errorf("host %s: %w", hosts[i], err)
		case p.began(req.MachineID) == hosts[i]:
			return providers.Machine{}, fmt.Errorf("host %s, where machine %s's install began: %w", hosts[i], req.MachineID, err)
		default:
			p.log.Warn("create: host skipped", "host", hosts[i], "machine", req.MachineID, "err", err)
			if down == nil {
				down = fmt.Errorf("host %s: %w", hosts[i], err)
			}
		}
	}
	for i, st := range states {
		if errs[i] != nil || st.taken {
			continue
		}
		m, err := p.install(ctx, hosts[i], req.MachineID, tags, script, false)
		if errors.Is(err, errTaken) {
			continue // another create took it since it was read
		}
		return m, err
	}
	if down != nil { // it may be free when it is back
		return providers.Machine{}, fmt.Errorf("no free host reachable: %w", down)
	}
	return providers.Machine{}, &providers.Error{Kind: providers.KindQuota, Code: "no_free_host",
		Message: fmt.Sprintf("all %d hosts of the template already hold a wharf agent", len(hosts))}
}

// began is the host where this provider began machineID's install (""
// when none).
func (p *Provider) began(machineID string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.installs[machineID]
}

// forget drops the record that machineID's install began on host.
func (p *Provider) forget(machineID, host string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.installs[machineID] == host {
		delete(p.installs, machineID)
	}
}

// freeTimeout bounds the undoing of a failed install.
const freeTimeout = 30 * time.Second

// errTaken: the host was taken between reading it and taking it.
var errTaken = errors.New("host already taken")

// install takes host (unless held: it already holds this machine) and runs
// the install there, in one SSH session. A failed install is undone, so
// the host is free again for the retry.
func (p *Provider) install(ctx context.Context, host, machineID string, tags map[string]string, script string, held bool) (providers.Machine, error) {
	l := p.hostLock(host)
	l.Lock()
	defer l.Unlock()
	c, err := p.dial(ctx, host)
	if err != nil {
		return providers.Machine{}, err
	}
	defer c.Close()
	log := p.log.With("host", host, "machine", machineID)
	log.Info("installing the agent")
	p.mu.Lock()
	p.installs[machineID] = host
	p.mu.Unlock()
	ictx, cancel := context.WithTimeout(ctx, p.opts.InstallTimeout)
	defer cancel()
	out, err := p.output(ictx, c, installAndReport(machineID, tags, script, held))
	switch {
	case isExit(err, exitTaken): // nothing of this machine was done there
		p.forget(machineID, host)
		return providers.Machine{}, errTaken
	case err != nil:
		log.Warn("install failed; freeing the host", "err", err)
		if p.free(host) {
			p.forget(machineID, host)
		}
		return providers.Machine{}, fmt.Errorf("host %s: install: %w", host, err)
	}
	st := parseState(out)
	if st.installed != machineID {
		return providers.Machine{}, &providers.Error{Kind: providers.KindUnavailable, Code: "not_installed",
			Message: fmt.Sprintf("host %s: the install succeeded but the host holds machine %q", host, st.installed)}
	}
	log.Info("agent installed")
	return st.machine(host), nil
}

// free undoes a failed install on a fresh connection (the one that ran
// it may be gone with the caller's context), bounded by freeTimeout: the
// caller's deadline may have passed already. It reports whether the host
// is free.
func (p *Provider) free(host string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), min(p.opts.CommandTimeout, freeTimeout))
	defer cancel()
	c, err := p.dial(ctx, host)
	if err != nil {
		p.log.Warn("could not free the host after a failed install", "host", host, "err", err)
		return false
	}
	defer c.Close()
	if err := p.runShort(ctx, c, uninstallScript); err != nil {
		p.log.Warn("could not free the host after a failed install", "host", host, "err", err)
		return false
	}
	return true
}

// Delete runs the uninstall on the host. A host that holds no wharf
// machine is not an error; an unreachable one is KindUnavailable.
func (p *Provider) Delete(ctx context.Context, providerID string) error {
	if p.credErr != nil {
		return p.credErr
	}
	l := p.hostLock(providerID)
	l.Lock()
	defer l.Unlock()
	c, err := p.dial(ctx, providerID)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := p.runShort(ctx, c, uninstallScript); err != nil {
		return fmt.Errorf("host %s: uninstall: %w", providerID, err)
	}
	p.mu.Lock()
	for id, h := range p.installs {
		if h == providerID {
			delete(p.installs, id)
		}
	}
	p.mu.Unlock()
	p.log.Info("agent uninstalled", "host", providerID)
	return nil
}

// Describe reads the host's marker: running when the agent is installed,
// pending while an install is under way (taken, not installed), gone when
// the host holds no wharf machine.
func (p *Provider) Describe(ctx context.Context, providerID string) (providers.Machine, error) {
	if p.credErr != nil {
		return providers.Machine{}, p.credErr
	}
	c, err := p.dial(ctx, providerID)
	if err != nil {
		return providers.Machine{}, err
	}
	defer c.Close()
	st, err := p.readState(ctx, c)
	if err != nil {
		return providers.Machine{}, fmt.Errorf("host %s: %w", providerID, err)
	}
	return st.machine(providerID), nil
}

// List reads every pinned host and returns those holding a machine of
// cluster. A host that cannot be read (unreachable, or refused) is left
// out, with a warning: it is no evidence of a machine, and the caller
// tells a lost machine by its host going down as well. When no host can be
// read at all, List fails with the first host's error (in host order).
func (p *Provider) List(ctx context.Context, cluster string) ([]providers.Machine, error) {
	if p.credErr != nil {
		return nil, p.credErr
	}
	states, errs := p.readHosts(ctx, p.hosts)
	var out []providers.Machine
	var first error
	read := 0
	for i, st := range states {
		if errs[i] != nil {
			p.log.Warn("list: host left out", "host", p.hosts[i], "err", errs[i])
			if first == nil {
				first = fmt.Errorf("list: host %s: %w", p.hosts[i], errs[i])
			}
			continue
		}
		read++
		if st.tags[providers.TagCluster] == cluster {
			out = append(out, st.machine(p.hosts[i]))
		}
	}
	if read == 0 && first != nil {
		return nil, first
	}
	return out, nil
}

// readHosts reads the state of every host, Parallel at a time; errs[i] is
// host i's error.
func (p *Provider) readHosts(ctx context.Context, hosts []string) ([]hostState, []error) {
	states := make([]hostState, len(hosts))
	errs := make([]error, len(hosts))
	sem := make(chan struct{}, p.opts.Parallel)
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := p.dial(ctx, h)
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			states[i], errs[i] = p.readState(ctx, c)
		}()
	}
	wg.Wait()
	return states, errs
}
