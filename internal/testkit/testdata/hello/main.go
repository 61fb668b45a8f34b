// Command hello is what BuildBinaries' test builds.
package main

import "fmt"

func main() { fmt.Println("hello from testkit") }
