// Package client is a small Go client of the Sluice HTTP API (checked against api/openapi.json by the
// API's tests) and the verifier of its webhook signatures, for exchange backends to import.
package client
