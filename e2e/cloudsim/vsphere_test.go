package cloudsim

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const soapCall = `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><CloneVM_Task xmlns="urn:vim25"><_this type="VirtualMachine">vm-1</_this></CloneVM_Task></soapenv:Body></soapenv:Envelope>`

func TestVSphereFront(t *testing.T) {
	var mu sync.Mutex
	seen := 0
	target := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen++
		mu.Unlock()
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Set-Cookie", "vmware_soap_session=abc")
		w.Write([]byte("answer to " + soapMethod(b)))
	}))
	t.Cleanup(target.Close)
	f, err := NewVSphereFront(target.URL + "/sdk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	post := func() (int, string, http.Header, error) {
		resp, err := http.Post(f.URL(), "text/xml", strings.NewReader(soapCall))
		if err != nil {
			return 0, "", nil, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header, nil
	}
	if status, body, hdr, err := post(); err != nil || status != 200 || body != "answer to CloneVM_Task" || hdr.Get("Set-Cookie") == "" {
		t.Fatalf("forwarded: %d %q %v %v", status, body, hdr, err)
	}
	f.Inject(VSphereFault{Method: "CloneVM_Task", Fault: "InsufficientResourcesFault", Message: "no <room>", Times: 1})
	status, body, _, err := post()
	if err != nil || status != 500 || !strings.Contains(body, `xsi:type="InsufficientResourcesFault"`) || !strings.Contains(body, "no &lt;room&gt;") {
		t.Fatalf("fault: %d %s %v", status, body, err)
	}
	f.Inject(VSphereFault{Method: "Other", Status: 503})
	f.Inject(VSphereFault{Status: 429, Times: 1})
	if status, _, _, _ := post(); status != 429 {
		t.Fatalf("throttle: %d", status)
	}
	f.ClearFaults()
	f.LoseAnswers("CloneVM_Task", 1)
	if _, _, _, err := post(); err == nil {
		t.Fatal("a lost answer answered")
	}
	mu.Lock()
	n := seen
	mu.Unlock()
	if n != 2 {
		t.Fatalf("the target saw %d calls, want 2 (faults stop calls, lost answers do not)", n)
	}
	if c := f.Calls()["CloneVM_Task"]; c != 4 {
		t.Fatalf("%d calls counted, want 4", c)
	}
	f.SetLatency(200 * time.Millisecond)
	start := time.Now()
	post()
	if time.Since(start) < 200*time.Millisecond {
		t.Fatal("no latency")
	}
}

func TestDecodeGuestinfoUserData(t *testing.T) {
	for _, tc := range []struct {
		ec     map[string]string
		want   string
		ok     bool
		hasErr bool
	}{
		{map[string]string{}, "", false, false},
		{map[string]string{"guestinfo.userdata": "I2Nsb3VkLWNvbmZpZwo=", "guestinfo.userdata.encoding": "base64"}, "#cloud-config\n", true, false},
		{map[string]string{"guestinfo.userdata": "I2Nsb3VkLWNvbmZpZwo=", "guestinfo.userdata.encoding": "b64"}, "#cloud-config\n", true, false},
		{map[string]string{"guestinfo.userdata": "#!/bin/sh\n"}, "#!/bin/sh\n", true, false},
		{map[string]string{"guestinfo.userdata": "%%", "guestinfo.userdata.encoding": "base64"}, "", true, true},
		{map[string]string{"guestinfo.userdata": "x", "guestinfo.userdata.encoding": "gzip+base64"}, "", true, true},
	} {
		got, ok, err := DecodeGuestinfoUserData(tc.ec)
		if string(got) != tc.want || ok != tc.ok || (err != nil) != tc.hasErr {
			t.Errorf("%v → %q %v %v", tc.ec, got, ok, err)
		}
	}
}

func TestVSphereBooter(t *testing.T) {
	var mu sync.Mutex
	vms := []VSphereVM{
		{ID: "vm-1", PoweredOn: true, ExtraConfig: map[string]string{"guestinfo.userdata": "I2Nsb3VkLWNvbmZpZwo=", "guestinfo.userdata.encoding": "base64", "wharf-machine": "m1", "team": "x"}},
		{ID: "vm-2", PoweredOn: false, ExtraConfig: map[string]string{"guestinfo.userdata": "I2Nsb3VkLWNvbmZpZwo=", "guestinfo.userdata.encoding": "base64"}},
		{ID: "vm-3", PoweredOn: true},
		{ID: "vm-4", PoweredOn: true, ExtraConfig: map[string]string{"guestinfo.userdata": "%", "guestinfo.userdata.encoding": "base64"}},
	}
	booted := map[string]Instance{}
	ended := map[string]bool{}
	b, err := NewVSphereBooter(VSphereBootOptions{
		List: func(context.Context) ([]VSphereVM, error) {
			mu.Lock()
			defer mu.Unlock()
			return append([]VSphereVM(nil), vms...), nil
		},
		Boot: func(ctx context.Context, inst Instance) error {
			mu.Lock()
			booted[inst.ID] = inst
			mu.Unlock()
			<-ctx.Done()
			mu.Lock()
			ended[inst.ID] = true
			mu.Unlock()
			return nil
		},
		Interval: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	waitFor(t, "vm-1 to boot", func() bool { mu.Lock(); defer mu.Unlock(); return booted["vm-1"].ID != "" })
	mu.Lock()
	inst := booted["vm-1"]
	if string(inst.UserData) != "#cloud-config\n" || inst.Tags["wharf-machine"] != "m1" || inst.Tags["team"] != "" || len(booted) != 1 {
		t.Fatalf("booted %+v", booted)
	}
	vms[1].PoweredOn = true
	vms = vms[1:] // vm-1 goes
	mu.Unlock()
	waitFor(t, "vm-1 to end and vm-2 to boot", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return ended["vm-1"] && booted["vm-2"].ID != ""
	})
	if e := b.Error("vm-4"); !strings.Contains(e, "base64") {
		t.Fatalf("vm-4: %q", e)
	}
	b.Close()
	mu.Lock()
	defer mu.Unlock()
	if !ended["vm-2"] || booted["vm-3"].ID != "" {
		t.Fatalf("after Close: ended %v booted %v", ended, booted)
	}
}
