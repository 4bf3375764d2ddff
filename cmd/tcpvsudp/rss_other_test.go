//go:build !linux

package main

import "os/exec"

// killWithParent does nothing here: TestRSSSteady runs on Linux only.
func killWithParent(cmd *exec.Cmd) {}
