package scheduler

import (
	"errors"
	"testing"
)

func TestCheckQuota(t *testing.T) {
	tests := []struct {
		name         string
		q            Quota
		usage, req   Usage
		want         string // "" for nil
		wantResource []string
	}{
		{"unlimited", Quota{}, Usage{100, 1e6, 1e6}, Usage{100, 1e6, 1e6}, "", nil},
		{"within", Quota{10, 2000, 4096}, Usage{2, 500, 1024}, Usage{8, 1500, 3072}, "", nil},
		{"cpu over", Quota{CPU: 2000}, Usage{CPU: 1500}, Usage{CPU: 1000}, "quota exceeded: cpu 2500m of 2000m", []string{"cpu"}},
		{"memory over", Quota{Memory: 2048}, Usage{Memory: 2048}, Usage{Memory: 1}, "quota exceeded: memory 2049 MB of 2048 MB", []string{"memory"}},
		{"instances over", Quota{Instances: 10}, Usage{Instances: 9}, Usage{Instances: 2}, "quota exceeded: instances 11 of 10", []string{"instances"}},
		{"several over", Quota{3, 1000, 1000}, Usage{3, 1000, 0}, Usage{1, 1, 1}, "quota exceeded: instances 4 of 3, cpu 1001m of 1000m", []string{"instances", "cpu"}},
		{"scaling down is always allowed", Quota{1, 1000, 1000}, Usage{5, 5000, 5000}, Usage{-1, -1000, -1000}, "", nil},
		{"a resource not requested is not checked", Quota{CPU: 1000}, Usage{CPU: 5000}, Usage{Memory: 100}, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckQuota(tt.q, tt.usage, tt.req)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v", err)
				}
				return
			}
			var qe *QuotaError
			if !errors.As(err, &qe) || !errors.Is(err, ErrQuotaExceeded) {
				t.Fatalf("got %v, want *QuotaError", err)
			}
			if err.Error() != tt.want {
				t.Errorf("message %q, want %q", err, tt.want)
			}
			if len(qe.Over) != len(tt.wantResource) {
				t.Fatalf("over %+v", qe.Over)
			}
			for i, r := range tt.wantResource {
				if qe.Over[i].Resource != r {
					t.Errorf("over[%d] = %s, want %s", i, qe.Over[i].Resource, r)
				}
			}
		})
	}
}
