# Least privilege for one pipvault transit key provider: vault-transit://transit/keys/pipvault
# (replace "transit" and "pipvault" with your mount and key name).
#
#   bao policy write pipvault-transit deploy/openbao/pipvault-transit.hcl
#
# encrypt/decrypt/rewrap: wrap, unwrap and rewrap data keys (the key never leaves OpenBao).
# keys read: check the key (aes256-gcm96, derived) and list its versions for GetKeyStatus.
# rotate: RotateKeyEncryptionKey and usage-bound rotation (drop it to rotate only from OpenBao).
# config: retire a KEK version by raising min_decryption_version once its census is zero.
# No export, no backup, no delete, no other key, no sys/ path.

path "transit/encrypt/pipvault" {
  capabilities = ["update"]
}

path "transit/decrypt/pipvault" {
  capabilities = ["update"]
}

path "transit/rewrap/pipvault" {
  capabilities = ["update"]
}

path "transit/keys/pipvault" {
  capabilities = ["read"]
}

path "transit/keys/pipvault/rotate" {
  capabilities = ["update"]
}

path "transit/keys/pipvault/config" {
  capabilities = ["update"]
}
