// A Go net/http server for the HTTP statistics tests: GET / answers 200,
// POST / 201, anything else 404. It prints its port, then serves until killed.
package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
)

func main() {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("port %d\n", listener.Addr().(*net.TCPAddr).Port)
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path != "/":
			http.NotFound(w, r)
		case r.Method == http.MethodPost:
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintln(w, "created")
		default:
			fmt.Fprintln(w, "hello")
		}
	})
	fmt.Fprintln(os.Stderr, http.Serve(listener, nil))
}
