# shellcheck shell=bash
# The test cluster's certificates, made fresh by every `up` with openssl: one CA, a serving certificate
# for etcd, the API server and the kubelet, a client certificate per component (the names the RBAC
# bootstrap roles expect), and the service-account signing key. EC P-256 keys: quick to make.
# Source after env.sh.

# issue NAME SUBJECT KIND [SANS]: $PKI/NAME.{key,crt} signed by the CA; KIND is server, client or
# "both" (etcd's server dials itself with its own certificate); SANS as openssl's subjectAltName ("IP:127.0.0.1,DNS:localhost").
issue() {
  local name=$1 subject=$2 kind=$3 sans=${4:-} ext=$PKI/$1.ext
  {
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = critical, digitalSignature, keyEncipherment"
    case $kind in
      server) echo "extendedKeyUsage = serverAuth" ;;
      client) echo "extendedKeyUsage = clientAuth" ;;
      both) echo "extendedKeyUsage = serverAuth, clientAuth" ;;
    esac
    [ -z "$sans" ] || echo "subjectAltName = $sans"
  } > "$ext"
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$name.key" 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subject" -out "$PKI/$name.csr" 2>/dev/null
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 2 -extfile "$ext" -out "$PKI/$name.crt" 2>/dev/null || cdie "openssl could not sign $name"
  rm -f "$PKI/$name.csr" "$ext"
}

make_pki() {
  rm -rf "$PKI"
  mkdir -p "$PKI"
  chmod 0700 "$PKI"
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=baton-test-cluster-ca" -days 2 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$PKI/ca.crt" 2>/dev/null || cdie "openssl could not make the cluster's CA"
  issue etcd-server "/CN=etcd" both "IP:127.0.0.1,DNS:localhost"
  issue etcd-client "/CN=kube-apiserver-etcd-client" client
  issue apiserver "/CN=kube-apiserver" server \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP,IP:$SERVICE_API_IP"
  issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client
  issue admin "/O=system:masters/CN=baton-e2e-admin" client
  issue controller-manager "/CN=system:kube-controller-manager" client
  issue scheduler "/CN=system:kube-scheduler" client
  issue kube-proxy "/CN=system:kube-proxy" client
  issue kubelet-client "/O=system:nodes/CN=system:node:$NODE_NAME" client
  issue kubelet-server "/CN=$NODE_NAME" server "DNS:$NODE_NAME,IP:$NODE_IP,IP:127.0.0.1"
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/sa.key" 2>/dev/null
  openssl ec -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null || cdie "openssl could not make the service-account key"
}

# kubeconfig NAME: $CLUSTER_STATE/NAME.kubeconfig with NAME's client certificate, embedded.
kubeconfig() {
  local name=$1
  cat > "$CLUSTER_STATE/$name.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: baton-test
  cluster:
    server: https://$NODE_IP:$API_PORT
    certificate-authority-data: $(base64 -w0 < "$PKI/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 < "$PKI/$name.crt")
    client-key-data: $(base64 -w0 < "$PKI/$name.key")
contexts:
- name: baton-test
  context: {cluster: baton-test, user: $name}
current-context: baton-test
KC
  chmod 0600 "$CLUSTER_STATE/$name.kubeconfig"
}
