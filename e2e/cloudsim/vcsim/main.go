// Command vcsim runs govmomi's vCenter simulator (the VPX model: one
// datacenter DC0 with a cluster, hosts, a datastore and template VMs) as
// a process of its own, on an HTTPS port of 127.0.0.1, for the end-to-end
// tests: a real vCenter is another process, and the simulator's own data
// races under concurrent tasks then stay its own instead of failing a
// race-detected test binary that only talks to it over SOAP.
//
// It prints the server's URL (without credentials) as its first line of
// output and serves until its standard input ends: the test that started
// it closes it, and so does the kernel when that test dies, so it never
// outlives its parent. The user name and password every login must give
// are read from VCSIM_USER and VCSIM_PASSWORD.
package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/url"
	"os"

	"github.com/vmware/govmomi/simulator"
)

func main() {
	user, pass := os.Getenv("VCSIM_USER"), os.Getenv("VCSIM_PASSWORD")
	if user == "" || pass == "" {
		fmt.Fprintln(os.Stderr, "vcsim: VCSIM_USER and VCSIM_PASSWORD must be set")
		os.Exit(2)
	}
	model := simulator.VPX()
	if err := model.Create(); err != nil {
		fmt.Fprintln(os.Stderr, "vcsim:", err)
		os.Exit(1)
	}
	model.Service.TLS = new(tls.Config)
	model.Service.Listen = &url.URL{User: url.UserPassword(user, pass)}
	srv := model.Service.NewServer()
	u := *srv.URL
	u.User = nil
	fmt.Println(u.String())
	_, _ = io.Copy(io.Discard, os.Stdin)
	srv.Close()
	model.Remove()
}
