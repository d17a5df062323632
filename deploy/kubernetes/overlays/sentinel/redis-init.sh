#!/bin/sh
# Writes redis.conf and sentinel.conf for this pod of the redis StatefulSet.
# The master is whoever the Sentinels name now; only when none answers (the
# very first start) is it redis-0. Every node announces its stable DNS name,
# so a failover survives pods coming back with new addresses.
set -eu
PASS="$(cat /run/secrets/aupguard/redis.password)"
DOMAIN="redis-headless.${POD_NAMESPACE}.svc.cluster.local"
ME="$(hostname).${DOMAIN}"
MASTER="$(timeout 5 redis-cli -h redis-sentinel -p 26379 --raw sentinel get-master-addr-by-name aupguard 2>/dev/null | head -n 1 || true)"
[ -n "$MASTER" ] || MASTER="redis-0.${DOMAIN}"
cat > /conf/redis.conf <<CONF
port 6379
dir /data
appendonly yes
requirepass "$PASS"
masterauth "$PASS"
replica-announce-ip $ME
CONF
if [ "$MASTER" != "$ME" ]; then
	echo "replicaof $MASTER 6379" >> /conf/redis.conf
fi
cat > /conf/sentinel.conf <<CONF
port 26379
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $ME
sentinel monitor aupguard $MASTER 6379 2
sentinel auth-pass aupguard "$PASS"
sentinel down-after-milliseconds aupguard 5000
sentinel failover-timeout aupguard 30000
sentinel parallel-syncs aupguard 1
CONF
