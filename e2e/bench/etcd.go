package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// etcdOp puts a value of valueSize bytes under one of 100 keys per worker;
// each worker has its own client connection spread over the endpoints, as
// each Wharf worker has its own HTTP connection.
func etcdOp(ctx context.Context, eps []string, clients, valueSize int) (op, func(), error) {
	cs := make([]*clientv3.Client, clients)
	for i := range cs {
		c, err := clientv3.New(clientv3.Config{Endpoints: []string{eps[i%len(eps)]}, DialTimeout: 5 * time.Second})
		if err != nil {
			return nil, nil, fmt.Errorf("etcd client: %w", err)
		}
		cs[i] = c
	}
	closeAll := func() {
		for _, c := range cs {
			c.Close()
		}
	}
	value := strings.Repeat("x", valueSize)
	return func(ctx context.Context, w, seq int) error {
		_, err := cs[w].Put(ctx, fmt.Sprintf("/bench/%d/%d", w, seq%100), value)
		return err
	}, closeAll, nil
}
