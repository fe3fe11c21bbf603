package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
)

// summarize reads JSON-lines results and prints, per target and client
// count, the median of each figure as a markdown table.
func summarize(path string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	type key struct {
		target  string
		clients int
	}
	runs := map[key][]result{}
	var order []key
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		k := key{r.Target, r.Clients}
		if _, ok := runs[k]; !ok {
			order = append(order, k)
		}
		runs[k] = append(runs[k], r)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	median := func(rs []result, f func(result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	fmt.Fprintln(w, "| target | clients | runs | writes/s (median) | p50 ms | p99 ms | errors | server CPU µs/write | client CPU µs/write |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	for _, k := range order {
		rs := runs[k]
		errs := 0
		for _, r := range rs {
			errs += r.Errors
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.0f | %.2f | %.2f | %d | %.0f | %.0f |\n", k.target, k.clients, len(rs),
			median(rs, func(r result) float64 { return r.PerSecond }),
			median(rs, func(r result) float64 { return r.P50ms }),
			median(rs, func(r result) float64 { return r.P99ms }), errs,
			median(rs, func(r result) float64 { return r.ServerCPU }),
			median(rs, func(r result) float64 { return r.ClientCPU }))
	}
	return nil
}
