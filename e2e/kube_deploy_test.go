package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/wharf-platform/wharf/e2e/kubeenv"
)

// TestKubernetesManifests: deploy/kubernetes applies to a real API server
// with server-side apply (so the server validates every object), and the
// cluster agent's ServiceAccount gets what it needs and no more: Pods in a
// tenant's namespace yes, Secrets of another namespace no.
func TestKubernetesManifests(t *testing.T) {
	t.Parallel() // everything of its own: see doc.go
	if testing.Short() {
		t.Skip("-short: no cluster")
	}
	c := kubeenv.Start(t, kubeenv.Options{})
	dir := filepath.Join("..", "deploy", "kubernetes")
	apply := func(args ...string) {
		t.Helper()
		out, err := c.Kubectl(t, append([]string{"apply", "--server-side", "--field-manager", "wharf-test"}, args...)...)
		if err != nil {
			t.Fatalf("apply %v: %v\n%s", args, err, out)
		}
		t.Logf("apply %v:\n%s", args, out)
	}
	apply("-f", filepath.Join(dir, "namespace.yaml"))
	apply("-f", dir)
	// A second apply changes nothing and conflicts with nothing.
	apply("-f", dir)

	for _, want := range []string{"deployment.apps/wharf-agent", "statefulset.apps/wharf-hub", "service/wharf-hub", "serviceaccount/wharf-agent",
		"clusterrole.rbac.authorization.k8s.io/wharf-agent", "role.rbac.authorization.k8s.io/wharf-agent"} {
		if out, err := c.Kubectl(t, "get", "-n", "wharf", want, "-o", "name"); err != nil || strings.TrimSpace(out) != want {
			t.Errorf("get %s: %q, %v", want, out, err)
		}
	}
	if out, err := c.Kubectl(t, "get", "-n", "wharf", "statefulset/wharf-hub", "-o", "jsonpath={.spec.replicas} {.spec.serviceName} {.spec.volumeClaimTemplates[0].metadata.name}"); err != nil || out != "3 wharf-hub data" {
		t.Errorf("hub StatefulSet: %q, %v", out, err)
	}
	if out, err := c.Kubectl(t, "get", "-n", "wharf", "deployment/wharf-agent", "-o", "jsonpath={.spec.replicas} {.spec.strategy.type}"); err != nil || out != "1 Recreate" {
		t.Errorf("agent Deployment: %q, %v", out, err)
	}

	// As the agent: the kubeconfig of its ServiceAccount (a token from
	// the TokenRequest API).
	as := c.KubeconfigFor(t, "wharf", "wharf-agent")
	canI := func(want string, args ...string) {
		t.Helper()
		out, _ := c.Kubectl(t, append([]string{"--kubeconfig", as, "auth", "can-i"}, args...)...)
		if got := strings.TrimSpace(out); got != want {
			t.Errorf("as the agent, can-i %v: %q, want %q", args, got, want)
		}
	}
	canI("yes", "create", "pods", "-n", "wharf-acme")
	canI("yes", "delete", "pods", "-n", "wharf-acme")
	canI("yes", "get", "pods", "--subresource=log", "-n", "wharf-acme")
	canI("yes", "watch", "pods", "--all-namespaces")
	canI("yes", "create", "namespaces")
	canI("yes", "list", "nodes")
	// kubectl auth can-i resolves a resource through discovery, and this
	// cluster serves no metrics API: ask the API server directly (without
	// kubectl's validation, which would list CRDs, as the agent may not).
	const review = `{"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
		"spec": {"resourceAttributes": {"group": "metrics.k8s.io", "resource": "pods", "verb": "list", "namespace": "wharf-acme"}}}`
	if out, err := c.KubectlStdin(t, review, "--kubeconfig", as, "create", "--validate=false", "-f", "-", "-o", "jsonpath={.status.allowed}"); err != nil || out != "true" {
		t.Errorf("as the agent, list pods.metrics.k8s.io in wharf-acme: %q, %v; want true", out, err)
	}
	canI("yes", "get", "secrets/wharf-agent-join", "-n", "wharf")
	canI("no", "get", "secrets", "-n", "other")
	canI("no", "list", "secrets", "--all-namespaces")
	canI("no", "get", "secrets/wharf-hub-key", "-n", "wharf")
	canI("no", "delete", "namespaces")
	canI("no", "update", "nodes")
	canI("no", "create", "rolebindings", "-n", "wharf-acme")
	canI("no", "create", "pods", "--subresource=exec", "-n", "wharf-acme")
}
