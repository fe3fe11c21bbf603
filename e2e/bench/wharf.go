package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// wharfOp writes one of 100 apps per worker through PUT /v1/apps/{name}
// (a committed Raft write of a ~250-byte spec), spreading workers over the
// hub nodes; writes that reach a follower are forwarded to the leader, as
// in etcd. After an app's first write its spec stays the same (its count
// is seq%50 and the app seq%100), as etcdOp puts the same value under a
// key: each write still commits through Raft, rewrites the app's record
// with a new index and appends to the audit log, but starts no rollout.
func wharfOp(ctx context.Context, eps []string, token, tenant string, clients int) (op, func(), error) {
	if token == "" {
		return nil, nil, fmt.Errorf("-token is required for wharf")
	}
	tr := &http.Transport{MaxIdleConns: clients * 2, MaxIdleConnsPerHost: clients, IdleConnTimeout: time.Minute}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	return func(ctx context.Context, w, seq int) error {
		name := fmt.Sprintf("b%d-%d", w, seq%100)
		body := fmt.Sprintf(`{"name":%q,"image":"bench:1","instances":%d,"cpu":100,"memory":64,`+
			`"env":{"BENCH":"yes","PAD":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}`, name, seq%50)
		url := fmt.Sprintf("%s/v1/apps/%s?tenant=%s", eps[w%len(eps)], name, tenant)
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, url, bytes.NewBufferString(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("PUT %s: %s: %s", name, resp.Status, bytes.TrimSpace(b))
		}
		return nil
	}, tr.CloseIdleConnections, nil
}
