package cloudsim

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDecodeVSphereRequest feeds arbitrary SOAP bodies through the
// vSphere front's whole request path (the method decoder, the counters,
// the faults and the forward to a target that echoes the method): nothing
// may panic, the method is an XML name or "", and every injected fault's
// answer is a well-formed SOAP fault.
func FuzzDecodeVSphereRequest(f *testing.F) {
	for _, seed := range []string{
		soapCall,
		`<Envelope><Body><RetrievePropertiesEx/></Body></Envelope>`,
		`<Envelope><Header/><Body></Body></Envelope>`,
		`<Body><Body><x:CloneVM_Task xmlns:x="urn:vim25"/></Body></Body>`,
		`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><Envelope><Body>&a;<Login/></Body></Envelope>`,
		`<Envelope><Body><`, "", "\x00\xff<",
	} {
		f.Add(seed, "")
		f.Add(seed, "InsufficientResourcesFault")
	}
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Write([]byte(soapMethod(b)))
	}))
	f.Cleanup(target.Close)
	front, err := NewVSphereFront(target.URL + "/sdk")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(front.Close)
	f.Fuzz(func(t *testing.T, body, fault string) {
		method := soapMethod([]byte(body))
		if method != "" && !validXMLName(method) {
			t.Fatalf("method %q of %q is not an XML name", method, body)
		}
		front.ClearFaults()
		if fault != "" {
			front.Inject(VSphereFault{Method: method, Fault: fault, Message: body, Times: 1})
		}
		w := httptest.NewRecorder()
		front.serveHTTP(w, httptest.NewRequest(http.MethodPost, "/sdk", strings.NewReader(body)))
		switch {
		case fault != "":
			if w.Code != http.StatusInternalServerError {
				t.Fatalf("a fault answered %d", w.Code)
			}
			var env struct {
				Body struct {
					Fault struct {
						Code   string `xml:"faultcode"`
						String string `xml:"faultstring"`
					} `xml:"Fault"`
				} `xml:"Body"`
			}
			if err := xml.Unmarshal(w.Body.Bytes(), &env); err != nil || env.Body.Fault.Code != "ServerFaultCode" {
				t.Fatalf("fault answer %q: %v", w.Body.String(), err)
			}
		case w.Code != http.StatusOK || w.Body.String() != method:
			t.Fatalf("forwarded %q: %d %q, want the method %q", body, w.Code, w.Body.String(), method)
		}
		if front.Calls()[method] == 0 {
			t.Fatalf("the call of %q was not counted", method)
		}
	})
}

// FuzzDecodeGuestinfo feeds arbitrary extraConfig values through the
// guestinfo decoders the vSphere booter uses: nothing may panic, an
// encoded value decodes to what was encoded, and metadata that decodes
// has an instance-id.
func FuzzDecodeGuestinfo(f *testing.F) {
	f.Add("#cloud-config\n", "base64", `{"instance-id":"m-1","local-hostname":"wharf-m-1"}`, "")
	f.Add("I2Nsb3VkLWNvbmZpZwo=", "b64", "eyJpbnN0YW5jZS1pZCI6Im0tMSJ9", "base64")
	f.Add("x", "gzip+base64", "{}", "")
	f.Add("", "", `{"instance-id":""}`, "b64")
	f.Fuzz(func(t *testing.T, ud, udEnc, md, mdEnc string) {
		ec := map[string]string{"guestinfo.userdata": ud, "guestinfo.userdata.encoding": udEnc, "guestinfo.metadata": md, "guestinfo.metadata.encoding": mdEnc}
		if got, ok, err := DecodeGuestinfoUserData(ec); !ok || (err == nil && udEnc == "" && string(got) != ud) {
			t.Fatalf("user data %q (%q): %q %v %v", ud, udEnc, got, ok, err)
		}
		if m, err := DecodeGuestinfoMetadata(ec); err == nil && m.InstanceID == "" {
			t.Fatalf("metadata %q decoded without an instance-id", md)
		}
		enc := map[string]string{"guestinfo.userdata": base64.StdEncoding.EncodeToString([]byte(ud)), "guestinfo.userdata.encoding": "base64"}
		if got, ok, err := DecodeGuestinfoUserData(enc); !ok || err != nil || !bytes.Equal(got, []byte(ud)) {
			t.Fatalf("base64 round trip of %q: %q %v %v", ud, got, ok, err)
		}
	})
}

// validXMLName reports whether s could be an element's local name.
func validXMLName(s string) bool {
	var v struct{}
	return xml.Unmarshal([]byte("<"+s+"/>"), &v) == nil
}
