package netconn

import (
	"fmt"
	"net"
	"os"
	"strings"
)

// socketStates names /proc/net/tcp's hexadecimal socket states.
var socketStates = map[string]string{"01": "ESTABLISHED", "02": "SYN-SENT", "03": "SYN-RECV", "04": "FIN-WAIT-1",
	"05": "FIN-WAIT-2", "06": "TIME-WAIT", "07": "CLOSE", "08": "CLOSE-WAIT", "09": "LAST-ACK", "0B": "CLOSING"}

// Sockets reads /proc/net/tcp: the IPv4 TCP sockets whose local port is
// port (a server's side of its connections; the listener excepted), by
// their peer's address as SocketKey writes it, with their state
// ("ESTABLISHED", "FIN-WAIT-1", ...; an unnamed state in /proc's hex). It
// shows what no socket call does: whether a connection given up on (Abort,
// StallBound) is gone from the kernel, FIN-WAIT and TIME-WAIT included.
// Where /proc/net/tcp cannot be read (every system but Linux) it returns
// the error.
func Sockets(port int) (map[string]string, error) {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return nil, err
	}
	local := fmt.Sprintf(":%04X", port)
	out := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasSuffix(f[1], local) || f[3] == "0A" { // 0A: LISTEN
			continue
		}
		st, ok := socketStates[f[3]]
		if !ok {
			st = f[3]
		}
		out[f[2]] = st
	}
	return out, nil
}

// SocketKey writes a TCP address as /proc/net/tcp does: the IPv4 address
// as a little-endian hex word, then the port in hex. It is "" for any
// other address.
func SocketKey(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta.IP.To4() == nil {
		return ""
	}
	ip := ta.IP.To4()
	return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], ta.Port)
}
