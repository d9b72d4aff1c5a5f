// Command pause is the sandbox ("pause") container of the test cluster's pods: it holds the pod's
// namespaces, reaps the zombies a shared PID namespace hands it, and exits 0 on SIGINT or SIGTERM.
// Built here because no image can be pulled from the internet on the test machines.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM, syscall.SIGCHLD)
	for s := range signals {
		if s != syscall.SIGCHLD {
			os.Exit(0)
		}
		for {
			// Reap every child that has ended; stop at the first "none left" (0 or ECHILD).
			pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
	}
}
