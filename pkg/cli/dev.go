package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wharf-platform/wharf/internal/atomicfile"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	pkgclient "github.com/wharf-platform/wharf/pkg/client"
)

// labelDev is put on every container of a dev agent; its value is the
// absolute data dir, which ties the container to one `wharf dev` setup
// across host ids (a removed data dir means a new host on the next run).
const labelDev = "wharf.dev"

// Files in the dev data dir besides the hub's and the agent's (in agent/).
const (
	devTokenFile  = "dev-token"  // the admin token, printed again by later runs
	devDriverFile = "dev-driver" // the dev agent's driver, fixed for the data dir's life
	devLogFile    = "dev.log"    // the hub's and the agent's logs
)

// devOptions are wharf dev's flags.
type devOptions struct {
	dataDir, driver string
	clean           bool
	// The hub's addresses.
	httpAddr, quicAddr, raftAddr, gossipAddr string
	// The agent's addresses.
	agentGossipAddr, agentLocalAddr, routerHTTPAddr, routerHTTPSAddr string
}

func (e *env) devCmd(hub, agent Daemon) *cobra.Command {
	var o devOptions
	c := &cobra.Command{
		Use:   "dev",
		Short: "Run Wharf on this machine: a single-node hub and one agent (pool default) in ./wharf-data",
		Long: "Run Wharf on this machine: a single-node hub and one agent in pool default, their state in\n" +
			"--data-dir, their logs in DATA_DIR/dev.log, and a manifest of the built-in demo app in\n" +
			"DATA_DIR/hello.yaml. --clean stops and removes the containers and processes it started.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch o.driver {
			case "", "docker", "exec":
			default:
				return usagef("--driver %q: want docker or exec", o.driver)
			}
			if agent == nil || hub == nil {
				return usagef("this build has no hub or no agent")
			}
			if o.clean {
				return fail(e.runDevClean(cmd.Context(), agent, o))
			}
			return fail(e.runDev(cmd.Context(), hub, agent, o))
		},
	}
	f := c.Flags()
	f.StringVar(&o.dataDir, "data-dir", "./wharf-data", "where the dev hub and agent keep their state")
	f.StringVar(&o.driver, "driver", "", "the agent's driver, docker or exec (default: the data dir's, else docker if a daemon answers, else exec)")
	f.BoolVar(&o.clean, "clean", false, "stop and remove the containers and processes wharf dev started from --data-dir, then exit")
	f.StringVar(&o.httpAddr, "http-addr", "127.0.0.1:7480", "hub API address")
	f.StringVar(&o.quicAddr, "quic-addr", "127.0.0.1:7481", "hub agent gateway (QUIC) address")
	f.StringVar(&o.raftAddr, "raft-addr", "127.0.0.1:7482", "hub Raft address")
	f.StringVar(&o.gossipAddr, "gossip-addr", "127.0.0.1:7483", "hub gossip address")
	f.StringVar(&o.agentGossipAddr, "agent-gossip-addr", "127.0.0.1:7484", "agent pool gossip address")
	f.StringVar(&o.agentLocalAddr, "agent-local-addr", "127.0.0.1:7485", "agent /healthz and /metrics address")
	f.StringVar(&o.routerHTTPAddr, "router-http-addr", "127.0.0.1:7080", "router HTTP address")
	f.StringVar(&o.routerHTTPSAddr, "router-https-addr", "127.0.0.1:7443", "router HTTPS address")
	return c
}

func (e *env) runDev(ctx context.Context, hub, agent Daemon, o devOptions) error {
	dataDir, err := filepath.Abs(o.dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	release, err := lockDataDir(dataDir)
	if err != nil {
		return err
	}
	defer release()
	docker := dockerClient(ctx)
	if docker != nil {
		defer docker.Close()
	}
	drv, err := devDriver(dataDir, o.driver, docker != nil)
	if err != nil {
		return err
	}
	manifest, err := e.prepareDemo(ctx, docker, drv, filepath.Join(o.dataDir, demoManifest))
	if err != nil {
		return err
	}
	if docker != nil {
		n, err := sweepDevContainers(ctx, docker, dataDir, devHostID(dataDir))
		if err != nil {
			return err
		}
		if n > 0 {
			fmt.Fprintf(e.stdout, "Removed %d container(s) an earlier wharf dev of %s left behind.\n", n, o.dataDir)
		}
	}
	if err := os.WriteFile(filepath.Join(dataDir, devDriverFile), []byte(drv+"\n"), 0o600); err != nil {
		return fmt.Errorf("record the driver: %w", err)
	}
	// Everything the hub and the agent log goes to the file, from the
	// first line: Raft's election warnings are no news in a dev setup.
	logPath := filepath.Join(o.dataDir, devLogFile)
	restore, err := redirectStderr(logPath)
	if err != nil {
		return err
	}
	defer restore()

	fs := pflag.NewFlagSet("hub", pflag.ContinueOnError)
	run := hub(fs)
	for k, v := range map[string]string{
		"data-dir": dataDir, "bootstrap-expect": "1", "http-addr": o.httpAddr,
		"quic-addr": o.quicAddr, "raft-addr": o.raftAddr, "gossip-addr": o.gossipAddr,
		"node-name": "dev", "log-level": "info",
	} {
		if err := fs.Set(k, v); err != nil {
			return fmt.Errorf("dev flag %s: %w", k, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	stopHub := func(err error) error {
		cancel()
		<-done
		return fmt.Errorf("%w (the logs are in %s)", err, logPath)
	}

	addr := "http://" + o.httpAddr
	c, err := pkgclient.New(pkgclient.Config{Address: addr, HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		return stopHub(err)
	}
	if err := waitLeader(ctx, c, done); err != nil {
		return stopHub(err)
	}
	token, err := devToken(ctx, c, dataDir)
	if err != nil {
		return stopHub(err)
	}
	admin, _ := pkgclient.New(pkgclient.Config{Address: addr, Token: token})
	if _, err := admin.Pools().Create(ctx, apitypes.PoolRequest{Name: "default", Datacenter: "dc1", Drivers: []string{drv}}); err != nil && apitypes.StatusOf(err) != http.StatusConflict {
		return stopHub(fmt.Errorf("create the default pool: %w", err))
	}
	if _, err := admin.Tenants().Create(ctx, apitypes.TenantRequest{Name: "dev"}); err != nil && apitypes.StatusOf(err) != http.StatusConflict {
		return stopHub(fmt.Errorf("create the dev tenant: %w", err))
	}
	agentDone := make(chan error, 1)
	if err := e.startDevAgent(ctx, admin, agent, dataDir, drv, o, agentDone); err != nil {
		return stopHub(err)
	}
	bin := filepath.Clean(os.Args[0])
	_, routerPort, _ := net.SplitHostPort(o.routerHTTPAddr)
	fmt.Fprintf(e.stdout, "Wharf dev hub ready (driver %s).\n  API:     %s\n  Console: %s/ui/ (sign in with the token)\n  Token:   %s\n  Logs:    %s\n", drv, addr, addr, token, logPath)
	fmt.Fprintf(e.stdout, "  export WHARF_ADDR=%s WHARF_TOKEN=%s\n", addr, token)
	fmt.Fprintf(e.stdout, "  Deploy the demo app: %s app deploy -f %s --tenant dev\n", bin, manifest)
	fmt.Fprintf(e.stdout, "  Then:   curl http://%s.dev.localhost:%s/\n", demoAppName, routerPort)
	select {
	case <-ctx.Done():
		return <-done
	case err := <-done:
		return fmt.Errorf("%w (the logs are in %s)", err, logPath)
	case err := <-agentDone:
		if err == nil {
			err = errors.New("the dev agent stopped")
		}
		return stopHub(fmt.Errorf("dev agent: %w", err))
	}
}

// prepareDemo makes the demo app available to the driver (an image of this
// binary for docker, the binary itself for exec) and writes its manifest to
// path, which it returns.
func (e *env) prepareDemo(ctx context.Context, docker *client.Client, drv, path string) (string, error) {
	bin, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this binary: %w", err)
	}
	if bin, err = filepath.EvalSymlinks(bin); err != nil {
		return "", fmt.Errorf("find this binary: %w", err)
	}
	var image string
	if drv == "docker" {
		static, err := staticBinary(bin)
		if err != nil {
			return "", err
		}
		if !static {
			return "", fmt.Errorf("%s is dynamically linked, but the docker driver runs the demo app from a FROM scratch image of it, "+
				"which needs a static binary: build it with CGO_ENABLED=0 (make build does), or run wharf dev --driver exec", bin)
		}
		var built bool
		if image, built, err = ensureDemoImage(ctx, docker, bin); err != nil {
			return "", fmt.Errorf("the demo image: %w", err)
		}
		if built {
			fmt.Fprintf(e.stdout, "Built the demo image %s from %s.\n", image, bin)
		}
	}
	if err := writeDemoManifest(path, drv, demoSpec(drv, image, bin)); err != nil {
		return "", err
	}
	return path, nil
}

// devDriver picks the dev agent's driver: the one recorded in the data dir
// (its pool, hosts and instances were made for it), else want, else docker
// when a daemon answers, else exec.
func devDriver(dataDir, want string, hasDocker bool) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, devDriverFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	recorded := strings.TrimSpace(string(b))
	switch {
	case recorded != "" && want != "" && want != recorded:
		return "", fmt.Errorf("data dir %s was set up for the %s driver: to use %s, run wharf dev --clean and remove the data dir (make clean does both)", dataDir, recorded, want)
	case recorded != "":
		want = recorded
	case want == "" && hasDocker:
		want = "docker"
	case want == "":
		want = "exec"
	}
	if want == "docker" && !hasDocker {
		return "", errors.New("no Docker daemon answers: start one, or run wharf dev --driver exec with a new data dir")
	}
	return want, nil
}

// startDevAgent runs one agent in pool default, its identity kept in
// DATA_DIR/agent; the first run enrols it with a one-use join token.
func (e *env) startDevAgent(ctx context.Context, admin *pkgclient.Client, agent Daemon, dataDir, drv string, o devOptions, done chan<- error) error {
	dir := filepath.Join(dataDir, "agent")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	flags := map[string]string{"data-dir": dir, "hub": o.quicAddr, "pool": "default", "name": "dev",
		"driver": drv, "container-label": labelDev + "=" + dataDir,
		"gossip-addr": o.agentGossipAddr, "local-addr": o.agentLocalAddr, "log-level": "info",
		"router-http-addr": o.routerHTTPAddr, "router-https-addr": o.routerHTTPSAddr}
	// An enrolled agent keeps its identity in "identity" ("host-id" and
	// three more files before that was one file).
	_, errIdentity := os.Stat(filepath.Join(dir, "identity"))
	_, errLegacy := os.Stat(filepath.Join(dir, "host-id"))
	if errIdentity != nil && errLegacy != nil {
		jt, err := admin.JoinTokens().Create(ctx, apitypes.JoinTokenRequest{Pool: "default", Uses: 1, TTL: apitypes.Duration(10 * time.Minute)})
		if err != nil {
			return fmt.Errorf("join token for the dev agent: %w", err)
		}
		flags["token"] = jt.Token
	}
	fs := pflag.NewFlagSet("agent", pflag.ContinueOnError)
	run := agent(fs)
	for k, v := range flags {
		if err := fs.Set(k, v); err != nil {
			return fmt.Errorf("dev agent flag %s: %w", k, err)
		}
	}
	go func() { done <- run(ctx) }()
	return nil
}

// waitLeader waits for the dev hub to lead. A hub that stopped meanwhile
// has its result put back into done, for the caller that waits on it.
func waitLeader(ctx context.Context, c *pkgclient.Client, done chan error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := c.Status(ctx)
		if err == nil && st.State == "leader" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the dev hub did not elect itself leader within 30s (last: %v)", err)
		}
		select {
		case err := <-done:
			done <- err
			if err == nil {
				err = errors.New("the hub stopped")
			}
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// devToken bootstraps the ACL system on first run and keeps the admin token
// in the data dir, so later runs print it again.
func devToken(ctx context.Context, c *pkgclient.Client, dataDir string) (string, error) {
	path := filepath.Join(dataDir, devTokenFile)
	b, err := c.Bootstrap(ctx)
	if err == nil {
		if err := atomicfile.Write(path, []byte(b.Token+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("save dev token: %w", err)
		}
		return b.Token, nil
	}
	if apitypes.StatusOf(err) != http.StatusConflict {
		return "", fmt.Errorf("bootstrap: %w", err)
	}
	saved, rerr := os.ReadFile(path)
	if rerr != nil {
		return "", fmt.Errorf("this data dir was bootstrapped but %s is missing: %w", path, rerr)
	}
	return strings.TrimSpace(string(saved)), nil
}
