"""Generated gRPC stubs for the pipvault API (see proto/). Never edited by hand."""
