package cloudsim

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// VSphereFront is a fault-injecting front for a vCenter SDK endpoint
// (govmomi's in-process simulator in tests): an HTTP server on 127.0.0.1
// that forwards every SOAP call to the target and, on demand, answers a
// call with a SOAP fault of a given type or an HTTP status, delays it,
// or performs it and closes the connection without an answer. It counts
// calls by SOAP method (CloneVM_Task, RetrieveProperties, ...). It needs
// nothing of govmomi: the simulator stays behind it, and tests reach it
// through the real SDK.
type VSphereFront struct {
	srv    *httptest.Server
	target *url.URL
	client *http.Client

	mu      sync.Mutex
	calls   map[string]int
	faults  []*VSphereFault
	lose    map[string]int
	latency time.Duration
}

// VSphereFault answers calls of a SOAP method with a fault.
type VSphereFault struct {
	// Method is the SOAP method ("" for every one), e.g. CloneVM_Task.
	Method string
	// Fault is the vSphere fault type, e.g. InsufficientResourcesFault;
	// "" answers the HTTP Status alone, with no SOAP body.
	Fault string
	// Message is the fault string; "" is "Injected fault <Fault>".
	Message string
	// Status is the HTTP status; 0 is 500 (how SOAP faults travel).
	Status int
	// Times is how many calls fail; 0 is every call until ClearFaults.
	Times int
}

// NewVSphereFront starts a front for target (the SDK URL, e.g.
// https://127.0.0.1:PORT/sdk; its certificate is not checked).
func NewVSphereFront(target string) (*VSphereFront, error) {
	u, err := url.Parse(target)
	if err != nil || u.Host == "" {
		return nil, errors.New("cloudsim: the vSphere front needs the target's URL")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // the simulator's own certificate
	tr.Proxy = nil
	f := &VSphereFront{target: u, client: &http.Client{Transport: tr}, calls: map[string]int{}, lose: map[string]int{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serveHTTP))
	return f, nil
}

// URL is the front's SDK endpoint, http://127.0.0.1:PORT/sdk.
func (f *VSphereFront) URL() string { return f.srv.URL + f.target.Path }

// Close stops the front (not the target).
func (f *VSphereFront) Close() { f.srv.Close() }

// Inject adds a fault; faults are matched in the order they were added.
func (f *VSphereFront) Inject(v VSphereFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = append(f.faults, &v)
}

// ClearFaults removes every fault and lost answer.
func (f *VSphereFront) ClearFaults() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.faults = nil
	clear(f.lose)
}

// LoseAnswers makes the next n calls of method ("" for any) reach the
// target and then closes the connection without an answer.
func (f *VSphereFront) LoseAnswers(method string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lose[method] += n
}

// SetLatency delays every answer by d.
func (f *VSphereFront) SetLatency(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.latency = d
}

// Calls returns how many calls of each SOAP method came through,
// faulted ones included.
func (f *VSphereFront) Calls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.calls)
}

// soapMethod is the name of the first element in a SOAP envelope's
// body: the method called.
func soapMethod(body []byte) string {
	d := xml.NewDecoder(bytes.NewReader(body))
	inBody := false
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		if se, ok := tok.(xml.StartElement); ok {
			if inBody {
				return se.Name.Local
			}
			inBody = se.Name.Local == "Body"
		}
	}
}

func (f *VSphereFront) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
	if err != nil {
		return
	}
	method := soapMethod(body)
	f.mu.Lock()
	f.calls[method]++
	latency := f.latency
	var fault *VSphereFault
	for i, v := range f.faults {
		if v.Method != "" && v.Method != method {
			continue
		}
		fault = v
		if v.Times > 0 {
			if v.Times--; v.Times == 0 {
				f.faults = slices.Delete(f.faults, i, i+1)
			}
		}
		break
	}
	lose := false
	for _, m := range []string{method, ""} {
		if f.lose[m] > 0 {
			f.lose[m]--
			lose = true
			break
		}
	}
	f.mu.Unlock()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if fault != nil {
		writeSOAPFault(w, *fault)
		return
	}
	out, err := http.NewRequestWithContext(r.Context(), r.Method, f.target.Scheme+"://"+f.target.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = r.Header.Clone()
	resp, err := f.client.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if lose {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
	}
	for k, v := range resp.Header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
	w.WriteHeader(resp.StatusCode)
	w.Write(answer)
}

// writeSOAPFault answers as vCenter answers a fault: HTTP 500 with a
// SOAP Fault whose detail carries the typed vim25 fault.
func writeSOAPFault(w http.ResponseWriter, v VSphereFault) {
	status := v.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if v.Fault == "" {
		http.Error(w, http.StatusText(status), status)
		return
	}
	msg := v.Message
	if msg == "" {
		msg = "Injected fault " + v.Fault
	}
	var esc bytes.Buffer
	xml.EscapeText(&esc, []byte(msg))
	name := xmlName(v.Fault)
	w.Header().Set("Content-Type", `text/xml; charset="utf-8"`)
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>`+
		`<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">`+
		`<soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>%s</faultstring>`+
		`<detail><%sFault xmlns="urn:vim25" xsi:type="%s"></%sFault></detail>`+
		`</soapenv:Fault></soapenv:Body></soapenv:Envelope>`, esc.String(), name, name, name)
}

// xmlName keeps a fault type to the characters an XML name may hold.
func xmlName(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 {
		return "RuntimeFault"
	}
	return b.String()
}

// VSphereVM is what the vSphere booter sees of a VM.
type VSphereVM struct {
	ID          string // the managed object reference value, vm-123
	PoweredOn   bool
	ExtraConfig map[string]string
	IP          string
}

// VSphereBootOptions configures a vSphere booter.
type VSphereBootOptions struct {
	// List reads the VMs (a test lists the simulator's with govmomi);
	// required.
	List func(ctx context.Context) ([]VSphereVM, error)
	// Boot runs for every VM that powers on with user data; required.
	// Its ctx ends when the VM powers off or goes.
	Boot BootFunc
	// Interval is how often List runs; 0 is 50 ms.
	Interval time.Duration
}

// VSphereBooter boots vSphere VMs as they power on: it polls the VMs
// and, for every new powered-on VM whose extraConfig has
// guestinfo.userdata, calls Boot with the decoded user data (the
// encoding in guestinfo.userdata.encoding: base64, gzip+base64 is
// refused, none is plain) and the wharf-* keys as Tags. It is
// stdlib-only: the govmomi side is the List function.
type VSphereBooter struct {
	opts   VSphereBootOptions
	cancel context.CancelFunc
	done   chan struct{}
	wg     sync.WaitGroup

	mu     sync.Mutex
	live   map[string]context.CancelFunc
	errors map[string]string // per VM: why it was not booted, or what Boot returned
}

// NewVSphereBooter starts polling; Close stops it and waits for every
// Boot to return.
func NewVSphereBooter(opts VSphereBootOptions) (*VSphereBooter, error) {
	if opts.List == nil || opts.Boot == nil {
		return nil, errors.New("cloudsim: the vSphere booter needs List and Boot")
	}
	if opts.Interval <= 0 {
		opts.Interval = 50 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &VSphereBooter{opts: opts, cancel: cancel, done: make(chan struct{}), live: map[string]context.CancelFunc{}, errors: map[string]string{}}
	go b.run(ctx)
	return b, nil
}

// Close stops polling, ends every booted VM's context and waits.
func (b *VSphereBooter) Close() {
	b.cancel()
	<-b.done
	b.mu.Lock()
	for _, c := range b.live {
		c()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// Error is why a VM was not booted, or what its Boot returned ("" for
// none so far).
func (b *VSphereBooter) Error(id string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.errors[id]
}

func (b *VSphereBooter) run(ctx context.Context) {
	defer close(b.done)
	t := time.NewTicker(b.opts.Interval)
	defer t.Stop()
	for {
		if vms, err := b.opts.List(ctx); err == nil {
			b.sync(ctx, vms)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sync boots the VMs that powered on and ends the ones that went.
func (b *VSphereBooter) sync(ctx context.Context, vms []VSphereVM) {
	on := map[string]bool{}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, vm := range vms {
		if !vm.PoweredOn {
			continue
		}
		on[vm.ID] = true
		if _, ok := b.live[vm.ID]; ok {
			continue
		}
		ud, ok, err := DecodeGuestinfoUserData(vm.ExtraConfig)
		if !ok {
			continue // not a machine of ours: nothing to run
		}
		if err != nil {
			if b.errors[vm.ID] == "" {
				b.errors[vm.ID] = err.Error()
			}
			continue
		}
		vctx, cancel := context.WithCancel(ctx)
		b.live[vm.ID] = cancel
		tags := map[string]string{}
		for k, v := range vm.ExtraConfig {
			if strings.HasPrefix(k, "wharf-") {
				tags[k] = v
			}
		}
		inst := Instance{ID: vm.ID, Tags: tags, UserData: ud, State: StateRunning, PrivateIP: vm.IP, LaunchTime: time.Now(), Booted: true}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			if err := b.opts.Boot(vctx, inst); err != nil {
				b.mu.Lock()
				b.errors[inst.ID] = err.Error()
				b.mu.Unlock()
			}
		}()
	}
	for id, cancel := range b.live {
		if !on[id] {
			cancel()
			delete(b.live, id)
		}
	}
}

// DecodeGuestinfoUserData reads guestinfo.userdata as cloud-init's
// VMware datasource does: ok is false when there is none; the encoding
// is base64 (or b64) or none.
func DecodeGuestinfoUserData(extraConfig map[string]string) (userData []byte, ok bool, err error) {
	v, ok := extraConfig["guestinfo.userdata"]
	if !ok {
		return nil, false, nil
	}
	switch enc := extraConfig["guestinfo.userdata.encoding"]; enc {
	case "base64", "b64":
		b, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, true, fmt.Errorf("guestinfo.userdata: not base64: %w", err)
		}
		return b, true, nil
	case "":
		return []byte(v), true, nil
	default:
		return nil, true, fmt.Errorf("guestinfo.userdata.encoding %q is not simulated", truncate(enc, 32))
	}
}
