// Command cnitool drives CNI network configuration lists through libcni, the
// way a container runtime does, for the pycni test bench.
//
//	cnitool add|check|del NETWORK NETNS_PATH
//	cnitool version TYPE
//
// Environment: CNI_PATH, NETCONFPATH (default /etc/cni/net.d), CNI_IFNAME
// (default eth0), CAP_ARGS (JSON object), CNI_ARGS (K=V;K=V), CNI_CACHE_DIR
// (libcni result cache) and CNI_CONTAINERID (default derived from the netns
// path). On ADD the result is printed; on failure one JSON line
// {"code":N,"msg":...,"details":...,"error":...} goes to stdout, the error
// text to stderr, and the exit status is 1.
package main

import (
	"context"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"
)

const usage = "usage: cnitool add|check|del NETWORK NETNS_PATH | cnitool version TYPE"

type failure struct {
	Code    uint   `json:"code"`
	Msg     string `json:"msg"`
	Details string `json:"details,omitempty"`
	Error   string `json:"error"`
}

// fail reports err as a CNI error on stdout and as text on stderr, then exits 1.
// Errors that did not come from a plugin get code 999 (libcni's ErrInternal).
func fail(err error) {
	f := failure{Code: types.ErrInternal, Msg: err.Error(), Error: err.Error()}
	var cniErr *types.Error
	if errors.As(err, &cniErr) {
		f.Code, f.Msg, f.Details = cniErr.Code, cniErr.Msg, cniErr.Details
	}
	out, _ := json.Marshal(f)
	fmt.Fprintln(os.Stdout, string(out))
	fmt.Fprintln(os.Stderr, "cnitool:", err)
	os.Exit(1)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func pluginPaths() []string {
	return filepath.SplitList(os.Getenv("CNI_PATH"))
}

// cniArgs splits "K=V;K=V" into pairs; an element without '=' is an error.
func cniArgs(raw string) ([][2]string, error) {
	var pairs [][2]string
	for _, item := range strings.Split(raw, ";") {
		if item == "" {
			continue
		}
		k, v, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("CNI_ARGS: %q is not K=V", item)
		}
		pairs = append(pairs, [2]string{k, v})
	}
	return pairs, nil
}

// containerID follows upstream cnitool: "cnitool-" and the hex of the first
// ten bytes of the SHA-512 of the netns path.
func containerID(netns string) string {
	if id := os.Getenv("CNI_CONTAINERID"); id != "" {
		return id
	}
	sum := sha512.Sum512([]byte(netns))
	return "cnitool-" + hex.EncodeToString(sum[:10])
}

func runVersion(ctx context.Context, pluginType string) error {
	cni := libcni.NewCNIConfig(pluginPaths(), nil)
	info, err := cni.GetVersionInfo(ctx, pluginType)
	if err != nil {
		return err
	}
	out, err := json.Marshal(map[string][]string{"supportedVersions": info.SupportedVersions()})
	if err != nil {
		return err
	}
	fmt.Println(string(out))
	return nil
}

func runNetwork(ctx context.Context, verb, network, netns string) error {
	list, err := libcni.LoadConfList(envOr("NETCONFPATH", "/etc/cni/net.d"), network)
	if err != nil {
		return err
	}
	if netns != "" {
		if netns, err = filepath.Abs(netns); err != nil {
			return err
		}
	}
	rt := &libcni.RuntimeConf{
		ContainerID: containerID(netns),
		NetNS:       netns,
		IfName:      envOr("CNI_IFNAME", "eth0"),
	}
	if rt.Args, err = cniArgs(os.Getenv("CNI_ARGS")); err != nil {
		return err
	}
	if raw := os.Getenv("CAP_ARGS"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &rt.CapabilityArgs); err != nil {
			return fmt.Errorf("CAP_ARGS: %w", err)
		}
	}
	cni := libcni.NewCNIConfigWithCacheDir(pluginPaths(), os.Getenv("CNI_CACHE_DIR"), nil)
	switch verb {
	case "add":
		result, err := cni.AddNetworkList(ctx, list, rt)
		if err != nil {
			return err
		}
		if err := result.PrintTo(os.Stdout); err != nil {
			return err
		}
		fmt.Println()
		return nil
	case "check":
		return cni.CheckNetworkList(ctx, list, rt)
	case "del":
		return cni.DelNetworkList(ctx, list, rt)
	}
	return fmt.Errorf("unknown command %q; %s", verb, usage)
}

func main() {
	ctx := context.Background()
	var err error
	switch {
	case len(os.Args) == 3 && os.Args[1] == "version":
		err = runVersion(ctx, os.Args[2])
	case len(os.Args) == 4:
		err = runNetwork(ctx, os.Args[1], os.Args[2], os.Args[3])
	default:
		err = errors.New(usage)
	}
	if err != nil {
		fail(err)
	}
}
