package hub

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"

	"github.com/wharf-platform/wharf/hub/accounts"
	"github.com/wharf-platform/wharf/hub/provision"
	"github.com/wharf-platform/wharf/hub/scheduler"
	"github.com/wharf-platform/wharf/hub/state"
	"github.com/wharf-platform/wharf/installer"
	"github.com/wharf-platform/wharf/internal/seal"
	"github.com/wharf-platform/wharf/pkg/pki"
	"github.com/wharf-platform/wharf/providers"
)

// provisionStore is the provisioner's window on this node's state replica
// (it runs on the leader) and on Raft.
type provisionStore struct {
	state  *state.Store
	commit applier
	keys   *seal.Keyring
	events eventLog
	open   func(providers.Account) (providers.Provider, error) // providers.Open unless a test's
}

var _ provision.Store = (*provisionStore)(nil)

func (s *provisionStore) View(ctx context.Context) (*provision.View, error) {
	snap := s.state.Snapshot()
	v := &provision.View{Pending: map[string][]provision.Demand{}, IdleSince: map[string]time.Time{}}
	ca, err := snap.AgentCA(nil)
	if err != nil {
		return nil, err
	}
	if ca != nil {
		v.CAFingerprint = ca.Fingerprint
	}
	if v.Accounts, err = snap.ProviderAccounts(nil); err != nil {
		return nil, err
	}
	if v.Pools, err = snap.Pools(nil); err != nil {
		return nil, err
	}
	if v.Machines, err = snap.Machines(nil, ""); err != nil {
		return nil, err
	}
	if v.Hosts, err = snap.Hosts(nil); err != nil {
		return nil, err
	}
	provisioned := false
	for _, p := range v.Pools {
		provisioned = provisioned || p.Provision != nil
	}
	if !provisioned { // nothing to grow or shrink: spare the scan of every instance
		return v, nil
	}
	insts, err := snap.Instances(nil)
	if err != nil {
		return nil, err
	}
	live := map[string]int{}             // per app key
	busy := map[string]bool{}            // hosts running something
	lastChange := map[string]time.Time{} // per host, its instances' latest change
	for _, i := range insts {
		if i.Live() {
			live[i.Tenant+"/"+i.App]++
			busy[i.Host] = true
		}
		if i.UpdatedAt.After(lastChange[i.Host]) {
			lastChange[i.Host] = i.UpdatedAt
		}
	}
	for _, h := range v.Hosts {
		if busy[h.ID] {
			continue
		}
		since := h.EnrolledAt
		if t := lastChange[h.ID]; t.After(since) {
			since = t
		}
		v.IdleSince[h.ID] = since
	}
	tenants, err := snap.Tenants(nil)
	if err != nil {
		return nil, err
	}
	for _, t := range tenants {
		apps, err := snap.Apps(nil, t.Name)
		if err != nil {
			return nil, err
		}
		for _, a := range apps {
			if a.Pending == "" || strings.HasPrefix(a.Pending, "invalid constraints") || a.Spec.Instances == nil {
				continue
			}
			missing := *a.Spec.Instances - live[a.Tenant+"/"+a.Name]
			if missing <= 0 {
				continue
			}
			if pool := provisionedPoolFor(v.Pools, v.Hosts, t, a); pool != "" {
				v.Pending[pool] = append(v.Pending[pool], provision.Demand{CPU: a.Spec.CPU, Memory: a.Spec.Memory, Count: missing})
			}
		}
	}
	return v, nil
}

// provisionedPoolFor is the provisioned pool that would grow for an app
// short of instances: the first, by name, of the pools the app names (or
// else that its tenant may use) that could run it and is not lost; when
// every pool the app names is lost, the first of its failover pools, in
// the app's order, that could run it. A lost pool (hosts, none of them
// ready: its datacenter is cut off or gone) is where the scheduler no
// longer places the app, which moves to its failover pools, and where a
// new machine's agent would likely not reach the hub either.
func provisionedPoolFor(pools []*state.Pool, hosts []*state.Host, t *state.Tenant, a *state.App) string {
	workload := scheduler.WorkloadOf(a.Spec.Image)
	usable := func(p *state.Pool) bool {
		return p.Provision != nil && (len(t.Pools) == 0 || slices.Contains(t.Pools, p.Name)) &&
			scheduler.PoolRuns(p.Drivers, p.Provider, workload) != scheduler.No
	}
	lost := lostPools(hosts)
	for _, p := range pools {
		if len(a.Spec.Pools) > 0 && !slices.Contains(a.Spec.Pools, p.Name) {
			continue
		}
		if usable(p) && !lost[p.Name] {
			return p.Name
		}
	}
	if len(a.Spec.Pools) == 0 {
		return ""
	}
	for _, name := range a.Spec.Pools {
		if !lost[name] {
			return "" // a named pool can still take the app (hosts enrolled by hand, or none yet)
		}
	}
	for _, name := range a.Spec.FailoverPools {
		for _, p := range pools {
			if p.Name == name && usable(p) {
				return p.Name
			}
		}
	}
	return ""
}

// lostPools are the pools that have hosts and none of them ready,
// draining or drained: every one is suspect or down. The scheduler places
// nothing on such a pool (it places on ready hosts only).
func lostPools(hosts []*state.Host) map[string]bool {
	lost := map[string]bool{}
	for _, h := range hosts {
		gone := h.State == state.HostSuspect || h.State == state.HostDown
		if v, seen := lost[h.Pool]; !seen || v {
			lost[h.Pool] = gone
		}
	}
	return lost
}

func (s *provisionStore) apply(ctx context.Context, t state.MessageType, req any) error {
	msg, err := state.Encode(t, req)
	if err != nil {
		return err
	}
	_, err = s.commit.Apply(ctx, msg)
	return err
}

func (s *provisionStore) AddMachine(ctx context.Context, m state.Machine) error {
	now := m.CreatedAt
	tok := state.JoinToken{ID: m.JoinToken, Pool: m.Pool, SecretHash: pki.HashSecret(s.JoinSecret(m.ID)), MaxUses: 1, Machine: m.ID}
	return s.apply(ctx, state.MachineCreateType, &state.MachineCreateRequest{Machine: m, Token: tok, Time: now})
}

func (s *provisionStore) SetMachine(ctx context.Context, c provision.Change) error {
	m, err := s.state.Snapshot().Machine(nil, c.ID)
	if err != nil {
		return err
	}
	if m == nil {
		return fmt.Errorf("machine %s: %w", c.ID, state.ErrNotFound)
	}
	if m.State != c.From {
		return fmt.Errorf("machine %s is %s, not %s: %w", c.ID, m.State, c.From, state.ErrConflict)
	}
	// The guard on the state holds on this replica; the compare-and-set
	// on the modify index makes it hold when the command applies.
	cas := m.ModifyIndex
	req := &state.MachineUpdateRequest{ID: c.ID, State: c.State, Error: &c.Error, CAS: &cas, Time: c.Time}
	if c.ProviderID != "" {
		req.ProviderID = &c.ProviderID
	}
	return s.apply(ctx, state.MachineUpdateType, req)
}

func (s *provisionStore) RemoveMachine(ctx context.Context, id string) error {
	err := s.apply(ctx, state.MachineDeleteType, &state.MachineDeleteRequest{ID: id, Time: time.Now().UTC()})
	if errors.Is(err, state.ErrNotFound) {
		return nil
	}
	return err
}

func (s *provisionStore) DrainHost(ctx context.Context, hostID string) error {
	h, err := s.state.Snapshot().Host(nil, hostID)
	if err != nil || h == nil {
		return err
	}
	if h.State == state.HostDraining || h.State == state.HostDrained {
		return nil
	}
	return s.apply(ctx, state.HostStateType, &state.HostStateRequest{ID: hostID, State: state.HostDraining, Disconnected: h.Disconnected,
		Reason: "drained to delete its machine " + h.Machine, Time: time.Now().UTC(), From: h.State})
}

// JoinSecret derives a machine's join token secret from the data key, so
// that every leader renders the same user data for a retried create.
func (s *provisionStore) JoinSecret(machineID string) string {
	return base64.RawURLEncoding.EncodeToString(s.keys.Derive("wharf machine join token", []byte(machineID)))
}

func (s *provisionStore) Open(acct *state.ProviderAccount) (providers.Provider, error) {
	a, err := accounts.Open(s.keys, acct)
	if err != nil {
		return nil, err
	}
	return s.open(a)
}

func (s *provisionStore) Event(ctx context.Context, ev state.Event) { s.events.Record(ctx, ev) }

// machineUserData renders the cloud-init document that installs the agent
// from any hub node and enrolls it with the machine's join token. The
// addresses are every node's, sorted, so that another leader renders the
// same bytes.
func (h *Hub) machineUserData(pool, machineID, joinToken string) ([]byte, error) {
	urls, gateways := h.hubAddrs()
	return installer.CloudConfig(installer.Join{HubURLs: urls, Gateways: gateways, JoinToken: joinToken, MachineID: machineID, Pool: pool})
}

// hubAddrs lists every known hub node's HTTP base URL and agent gateway
// address, sorted.
func (h *Hub) hubAddrs() (urls, gateways []string) {
	for _, m := range h.cluster.Members() {
		if m.HTTPAddr != "" {
			urls = append(urls, "http://"+m.HTTPAddr)
		}
		if a := m.Extra[metaQUIC]; a != "" {
			gateways = append(gateways, a)
		}
	}
	if len(urls) == 0 { // before gossip knows this node
		urls = []string{"http://" + advertisedAddr(h.cfg.Advertise, h.HTTPAddr())}
	}
	sort.Strings(urls)
	sort.Strings(gateways)
	return slices.Compact(urls), slices.Compact(gateways)
}

// provisioner runs the provisioning loop for the leader's term, woken
// whenever a table it decides from changes. The cluster's name in the
// wharf-cluster tag comes from its agent CA (made once, by the first
// leader): the loop starts when there is one.
type provisioner struct {
	state *state.Store
	cfg   provision.Config
}

// clusterTag names a cluster in its machines' wharf-cluster tag.
func clusterTag(caFingerprint string) string {
	hex := strings.TrimPrefix(caFingerprint, "sha256:")
	if len(hex) > 16 {
		hex = hex[:16]
	}
	return "wharf-" + hex
}

func (r provisioner) Run(ctx context.Context) error {
	var ca *state.AgentCA
	_, err := r.state.Blocking(ctx, 1, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, error) {
		var err error
		if ca, err = snap.AgentCA(ws); err != nil || ca != nil {
			return 2, err // done: above the minimum index
		}
		return 0, nil
	})
	if err != nil || ca == nil {
		return err // the term ended first
	}
	cfg := r.cfg
	cfg.Cluster = clusterTag(ca.Fingerprint)
	p, err := provision.New(cfg)
	if err != nil {
		return err
	}
	go func() {
		tables := []string{state.TableMachines, state.TableHosts, state.TablePools, state.TableProviders, state.TableApps, state.TableInstances}
		var last uint64
		for ctx.Err() == nil {
			idx, err := r.state.Blocking(ctx, last, func(ws memdb.WatchSet, snap *state.Snapshot) (uint64, error) {
				return snap.WatchTables(ws, tables...), nil
			})
			if err != nil || ctx.Err() != nil {
				return
			}
			if idx > last {
				last = idx
				p.Wake()
				// A burst of writes (a big deploy) wakes the loop a few
				// times a second, not once per entry.
				select {
				case <-ctx.Done():
				case <-time.After(200 * time.Millisecond):
				}
			}
			// While none of the tables was ever written their index is 0,
			// and a minimum index of 0 answers at once: wait for a change.
			last = max(last, 1)
		}
	}()
	return p.Run(ctx)
}
