package webhook

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/tokengate/tokengate/internal/webhooktest"
	"github.com/tokengate/tokengate/module/store"
)

// TestSignStandardVector: the test vector of the Standard Webhooks
// reference libraries.
func TestSignStandardVector(t *testing.T) {
	got, err := Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, []byte(`{"test": 2432232314}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="; got != want {
		t.Fatalf("Sign = %s, want %s", got, want)
	}
	if err := webhooktest.Verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", []byte(`{"test": 2432232314}`), "v2,x "+got); err != nil {
		t.Fatalf("the test receiver's own check disagrees: %v", err)
	}
}

func TestNewSecret(t *testing.T) {
	a, b := NewSecret(), NewSecret()
	key, err := secretKey(a)
	if err != nil || len(key) != 32 || a == b || !strings.HasPrefix(a, "whsec_") {
		t.Fatalf("secrets %q %q: key of %d bytes, %v", a, b, len(key), err)
	}
	if _, err := Sign("nope", "id", 1, nil); err == nil {
		t.Fatal("a secret without whsec_ signs")
	}
}

func TestRestricted(t *testing.T) {
	tests := []struct {
		addr string
		want string // "" for public
	}{
		{"127.0.0.1", "loopback"},
		{"127.8.9.10", "loopback"},
		{"::1", "loopback"},
		{"10.1.2.3", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"192.168.1.1", "private"},
		{"fc00::1", "private"},
		{"fd12:3456::1", "private"},
		{"169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"224.0.0.1", "link-local"},
		{"239.1.2.3", "multicast"},
		{"ff02::1", "link-local"},
		{"ff05::1", "multicast"},
		{"255.255.255.255", "broadcast"},
		{"0.1.2.3", `"this network"`},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.127.255.255", "carrier-grade NAT"},
		{"fec0::1", "site-local"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:169.254.169.254", "link-local"},
		{"::10.0.0.1", "private (embedded in IPv6)"},
		{"64:ff9b::a9fe:a9fe", "link-local (embedded in IPv6)"},
		{"2002:7f00:1::", "loopback (embedded in IPv6)"},
		{"2001:0:1::1", "Teredo tunnel"},
		{"fe80::1%eth0", "link-local"},
		// Special purpose, not globally reachable (a black-box test reached
		// the gateway's own host through 192.0.2.2).
		{"192.0.2.77", "special-purpose (not globally reachable)"},
		{"198.51.100.7", "special-purpose (not globally reachable)"},
		{"203.0.113.1", "special-purpose (not globally reachable)"},
		{"198.18.0.1", "special-purpose (not globally reachable)"},
		{"192.0.0.192", "special-purpose (not globally reachable)"},
		{"192.88.99.1", "special-purpose (not globally reachable)"},
		{"240.0.0.1", "special-purpose (not globally reachable)"},
		{"2001:db8::1", "special-purpose (not globally reachable)"},
		{"100::1", "special-purpose (not globally reachable)"},
		{"3fff::1", "special-purpose (not globally reachable)"},
		{"::ffff:0:7f00:1", "loopback (embedded in IPv6)"},
		{"::ffff:0:a9fe:a9fe", "link-local (embedded in IPv6)"},
		// Public.
		{"1.1.1.1", ""},
		{"8.8.8.8", ""},
		{"100.63.255.255", ""},
		{"100.128.0.0", ""},
		{"172.32.0.1", ""},
		{"2606:4700::1111", ""},
		{"64:ff9b::808:808", ""},
		{"::ffff:8.8.8.8", ""},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := Restricted(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Fatalf("Restricted(%s) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
	// Every address of this host's own interfaces, whatever its range: a
	// webhook to it reaches the host's services.
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range ifaddrs {
		p, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		if Restricted(p.Addr()) == "" {
			t.Errorf("this host's address %s is not restricted", p.Addr())
		}
	}
}

// fakeResolver answers with fixed addresses, as a DNS server would.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := f[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func TestCheckURL(t *testing.T) {
	dns := fakeResolver{
		"hooks.example.com": {netip.MustParseAddr("93.184.215.14")},
		"rebind.example":    {netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("10.0.0.7")},
		"metadata.example":  {netip.MustParseAddr("169.254.169.254")},
	}
	tests := []struct {
		url, refusal string // refusal: "" when accepted; else a part of the message
	}{
		{"https://hooks.example.com/tokengate", ""},
		{"http://hooks.example.com:8080/x?y=1", ""},
		{"https://93.184.215.14/", ""},
		{"http://127.0.0.1:9000/", "loopback"},
		{"http://10.1.2.3/", "private"},
		{"http://169.254.169.254/latest/meta-data/", "link-local"},
		{"http://[::1]:8080/", "loopback"},
		{"http://[fe80::1%25eth0]/", "link-local"},
		{"http://rebind.example/", `"rebind.example" resolves to 10.0.0.7`},
		{"http://metadata.example/", "link-local"},
		{"http://nowhere.example/", "does not resolve"},
		{"ftp://hooks.example.com/", "http or https"},
		{"hooks.example.com/x", "http or https"},
		{"https://user:pw@hooks.example.com/", "credentials"},
		{"https://hooks.example.com/#x", "fragment"},
		{"https:///x", "host"},
		{"", "required"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := CheckURL(context.Background(), tt.url, false, dns)
			var fe *store.FieldError
			switch {
			case tt.refusal == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.refusal != "" && (!errors.As(err, &fe) || fe.Field != "url" || !strings.Contains(fe.Message, tt.refusal)):
				t.Fatalf("got %v, want a refusal of url mentioning %q", err, tt.refusal)
			}
		})
	}
	// The system's resolver: localhost is loopback.
	if _, err := CheckURL(context.Background(), "http://localhost:8080/", false, nil); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("localhost: %v", err)
	}
	// Allowed: only the shape is judged.
	for _, u := range []string{"http://127.0.0.1:9/", "http://localhost/", "http://nowhere.example/"} {
		if _, err := CheckURL(context.Background(), u, true, dns); err != nil {
			t.Fatalf("%s with private addresses allowed: %v", u, err)
		}
	}
}
