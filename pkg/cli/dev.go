package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wharf-platform/wharf/internal/atomicfile"
	"github.com/wharf-platform/wharf/pkg/apitypes"
	"github.com/wharf-platform/wharf/pkg/client"
)

func (e *env) devCmd(hub, agent Daemon) *cobra.Command {
	var dataDir, httpAddr string
	c := &cobra.Command{
		Use:   "dev",
		Short: "Run Wharf on this machine: a single-node hub and one agent (pool default) in ./wharf-data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if hub == nil {
				return usagef("this build has no hub")
			}
			return fail(e.runDev(cmd.Context(), hub, agent, dataDir, httpAddr))
		},
	}
	c.Flags().StringVar(&dataDir, "data-dir", "./wharf-data", "where the dev hub keeps its state")
	c.Flags().StringVar(&httpAddr, "http-addr", "127.0.0.1:7480", "API address")
	return c
}

func (e *env) runDev(ctx context.Context, hub, agent Daemon, dataDir, httpAddr string) error {
	fs := pflag.NewFlagSet("hub", pflag.ContinueOnError)
	run := hub(fs)
	for k, v := range map[string]string{
		"data-dir": dataDir, "bootstrap-expect": "1", "http-addr": httpAddr,
		"quic-addr": "127.0.0.1:7481", "raft-addr": "127.0.0.1:7482", "gossip-addr": "127.0.0.1:7483",
		"node-name": "dev", "log-level": "warn",
	} {
		if err := fs.Set(k, v); err != nil {
			return fmt.Errorf("dev flag %s: %w", k, err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()

	addr := "http://" + httpAddr
	c, err := client.New(client.Config{Address: addr, HTTPClient: &http.Client{Timeout: 5 * time.Second}})
	if err != nil {
		return err
	}
	if err := waitLeader(ctx, c, done); err != nil {
		return err
	}
	token, err := devToken(ctx, c, dataDir)
	if err != nil {
		cancel()
		<-done
		return err
	}
	admin, _ := client.New(client.Config{Address: addr, Token: token})
	if _, err := admin.Pools().Create(ctx, apitypes.PoolRequest{Name: "default", Datacenter: "dc1"}); err != nil && apitypes.StatusOf(err) != http.StatusConflict {
		cancel()
		<-done
		return fmt.Errorf("create the default pool: %w", err)
	}
	if _, err := admin.Tenants().Create(ctx, apitypes.TenantRequest{Name: "dev"}); err != nil && apitypes.StatusOf(err) != http.StatusConflict {
		cancel()
		<-done
		return fmt.Errorf("create the dev tenant: %w", err)
	}
	agentDone := make(chan error, 1)
	if agent != nil {
		if err := e.startDevAgent(ctx, admin, agent, dataDir, agentDone); err != nil {
			cancel()
			<-done
			return err
		}
	}
	fmt.Fprintf(e.stdout, "Wharf dev hub ready.\n  API:    %s\n  Token:  %s\n  export WHARF_ADDR=%s WHARF_TOKEN=%s\n", addr, token, addr, token)
	fmt.Fprintf(e.stdout, "  Deploy: wharf app deploy hello --image IMAGE --port 8080 --tenant dev\n  Then:   curl http://hello.dev.localhost:7080/\n")
	select {
	case <-ctx.Done():
		return <-done
	case err := <-done:
		return err
	case err := <-agentDone:
		cancel()
		<-done
		if err == nil {
			err = errors.New("the dev agent stopped")
		}
		return fmt.Errorf("dev agent: %w", err)
	}
}

// startDevAgent runs one agent in pool default, its identity kept in
// DATA_DIR/agent; the first run enrols it with a one-use join token.
func (e *env) startDevAgent(ctx context.Context, admin *client.Client, agent Daemon, dataDir string, done chan<- error) error {
	dir := filepath.Join(dataDir, "agent")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	flags := map[string]string{"data-dir": dir, "hub": "127.0.0.1:7481", "pool": "default", "name": "dev",
		"gossip-addr": "127.0.0.1:7484", "local-addr": "127.0.0.1:7485", "log-level": "warn",
		"router-http-addr": "127.0.0.1:7080", "router-https-addr": "127.0.0.1:7443"}
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

func waitLeader(ctx context.Context, c *client.Client, done <-chan error) error {
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
func devToken(ctx context.Context, c *client.Client, dataDir string) (string, error) {
	path := filepath.Join(dataDir, "dev-token")
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
