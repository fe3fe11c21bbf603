package hub_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/wharf-platform/wharf/hub/hubtest"
	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// BenchmarkPutApp drives app updates through every node of an in-process
// 3-node cluster from parallel clients (b.SetParallelism scales them), the
// same write as e2e/bench. Use -cpuprofile to see where a write's CPU goes.
func BenchmarkPutApp(b *testing.B) {
	c := hubtest.New(b, 3, hubtest.Options{})
	admin := bootstrap(b, c)
	admin.must(b, "POST", c.Nodes[0].URL()+"/v1/tenants", apitypes.TenantRequest{Name: "bench"}, nil)
	var worker atomic.Int64
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := int(worker.Add(1))
		r := newREST(b, admin.token)
		url := c.Nodes[w%3].URL()
		for i := 0; pb.Next(); i++ {
			name := fmt.Sprintf("b%d-%d", w, i%100)
			spec := apitypes.AppSpec{Name: name, Image: "bench:1", Instances: intp(i % 50), Env: map[string]string{"PAD": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}
			if _, _, err := r.call(context.Background(), "PUT", url+"/v1/apps/"+name+"?tenant=bench", spec, nil); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
