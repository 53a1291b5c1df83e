/* handlers.h -- every command handler, by the file that defines it; the
 * command table (commands.c) is their only caller besides EXEC.
 *
 * A handler is `void cmd_x(client *c)`; the rules it follows are in
 * server.h. */
#ifndef ENGRAM_HANDLERS_H
#define ENGRAM_HANDLERS_H

typedef struct client client;

/* cmd_conn.c: the connection */
void cmd_ping(client *c);
void cmd_echo(client *c);
void cmd_quit(client *c);
void cmd_reset(client *c);
void cmd_hello(client *c);
void cmd_auth(client *c);
void cmd_select(client *c);
void cmd_client_id(client *c);
void cmd_client_getname(client *c);
void cmd_client_setname(client *c);
void cmd_client_setinfo(client *c);
void cmd_client_list(client *c);
void cmd_client_info(client *c);
void cmd_client_kill(client *c);
void cmd_client_onoff(client *c);
void cmd_client_help(client *c);

/* cmd_server.c: the server */
void cmd_config_get(client *c);
void cmd_config_set(client *c);
void cmd_config_resetstat(client *c);
void cmd_config_rewrite(client *c);
void cmd_config_help(client *c);
void cmd_debug_sleep(client *c);
void cmd_debug_set_active_expire(client *c);
void cmd_debug_wal_fault(client *c);
void cmd_debug_help(client *c);
void cmd_shutdown(client *c);
void cmd_save(client *c);
void cmd_bgsave(client *c);
void cmd_lastsave(client *c);
void cmd_time(client *c);
void cmd_module_list(client *c);
void cmd_module_load(client *c);
void cmd_module_help(client *c);

/* cmd_info.c */
void cmd_info(client *c);

/* cmd_command.c: COMMAND, from the table */
void cmd_command(client *c);
void cmd_command_count(client *c);
void cmd_command_info(client *c);
void cmd_command_docs(client *c);
void cmd_command_list(client *c);
void cmd_command_getkeys(client *c);
void cmd_command_getkeysandflags(client *c);
void cmd_command_help(client *c);

/* cmd_bits.c: bitmaps and LCS */
void cmd_setbit(client *c);
void cmd_getbit(client *c);
void cmd_bitcount(client *c);
void cmd_bitpos(client *c);
void cmd_bitop(client *c);
void cmd_lcs(client *c);
void cmd_bitfield(client *c);
void cmd_bitfield_ro(client *c);

/* cmd_kv.c: strings and keys */
void cmd_get(client *c);
void cmd_set(client *c);
void cmd_setnx(client *c);
void cmd_setex(client *c);
void cmd_psetex(client *c);
void cmd_getset(client *c);
void cmd_getdel(client *c);
void cmd_getex(client *c);
void cmd_mget(client *c);
void cmd_mset(client *c);
void cmd_msetnx(client *c);
void cmd_append(client *c);
void cmd_strlen(client *c);
void cmd_getrange(client *c);
void cmd_setrange(client *c);
void cmd_incr(client *c);
void cmd_decr(client *c);
void cmd_incrby(client *c);
void cmd_decrby(client *c);
void cmd_incrbyfloat(client *c);
void cmd_expire(client *c);
void cmd_pexpire(client *c);
void cmd_expireat(client *c);
void cmd_pexpireat(client *c);
void cmd_expiretime(client *c);
void cmd_pexpiretime(client *c);
void cmd_ttl(client *c);
void cmd_pttl(client *c);
void cmd_persist(client *c);
void cmd_del(client *c);
void cmd_unlink(client *c);
void cmd_exists(client *c);
void cmd_type(client *c);
void cmd_keys(client *c);
void cmd_scan(client *c);
void cmd_randomkey(client *c);
void cmd_rename(client *c);
void cmd_renamenx(client *c);
void cmd_copy(client *c);
void cmd_dbsize(client *c);
void cmd_flushdb(client *c);
void cmd_flushall(client *c);
void cmd_move(client *c);
void cmd_swapdb(client *c);
void cmd_object_encoding(client *c);
void cmd_object_help(client *c);
void cmd_object_freq(client *c);
void cmd_memory_usage(client *c);
void cmd_memory_help(client *c);
/* cmd_info.c */
void cmd_memory_stats(client *c);
void cmd_memory_doctor(client *c);

/* cmd_hash.c: hashes (Redis 7.0's, and 7.4-8's field expiry) */
void cmd_hset(client *c);
void cmd_hmset(client *c);
void cmd_hsetnx(client *c);
void cmd_hget(client *c);
void cmd_hmget(client *c);
void cmd_hdel(client *c);
void cmd_hlen(client *c);
void cmd_hstrlen(client *c);
void cmd_hexists(client *c);
void cmd_hincrby(client *c);
void cmd_hincrbyfloat(client *c);
void cmd_hgetall(client *c);
void cmd_hkeys(client *c);
void cmd_hvals(client *c);
void cmd_hscan(client *c);
void cmd_hrandfield(client *c);
void cmd_hexpire(client *c);
void cmd_hpexpire(client *c);
void cmd_hexpireat(client *c);
void cmd_hpexpireat(client *c);
void cmd_httl(client *c);
void cmd_hpttl(client *c);
void cmd_hexpiretime(client *c);
void cmd_hpexpiretime(client *c);
void cmd_hpersist(client *c);
void cmd_hgetdel(client *c);
void cmd_hgetex(client *c);
void cmd_hsetex(client *c);

/* cmd_pubsub.c: publish/subscribe */
void cmd_subscribe(client *c);
void cmd_unsubscribe(client *c);
void cmd_psubscribe(client *c);
void cmd_punsubscribe(client *c);
void cmd_ssubscribe(client *c);
void cmd_sunsubscribe(client *c);
void cmd_publish(client *c);
void cmd_spublish(client *c);
void cmd_pubsub_channels(client *c);
void cmd_pubsub_numsub(client *c);
void cmd_pubsub_numpat(client *c);
void cmd_pubsub_shardchannels(client *c);
void cmd_pubsub_shardnumsub(client *c);
void cmd_pubsub_help(client *c);

/* cmd_tx.c: transactions */
void cmd_multi(client *c);
void cmd_exec(client *c);
void cmd_discard(client *c);
void cmd_watch(client *c);
void cmd_unwatch(client *c);

/* cmd_vec.c: vectors, engram's dialect (VADD hands Redis's grammar on) */
void cmd_vnew(client *c);
void cmd_vadd(client *c);
void cmd_vsearch(client *c);
void cmd_vdel(client *c);
void cmd_vget(client *c);
void cmd_vexists(client *c);
void cmd_vcard(client *c);
void cmd_vinfo_full(client *c);
void cmd_vlist(client *c);
void cmd_vdrop(client *c);
void cmd_vsave(client *c);

/* cmd_vset.c: Redis 8's vector-set commands */
void cmd_vadd_redis(client *c);
void cmd_vsim(client *c);
void cmd_vrem(client *c);
void cmd_vismember(client *c);
void cmd_vdim(client *c);
void cmd_vemb(client *c);
void cmd_vlinks(client *c);
void cmd_vinfo(client *c);
void cmd_vsetattr(client *c);
void cmd_vgetattr(client *c);
void cmd_vrandmember(client *c);
void cmd_vrange(client *c);

/* cmd_acl.c: users and permissions */
void cmd_acl_setuser(client *c);
void cmd_acl_getuser(client *c);
void cmd_acl_deluser(client *c);
void cmd_acl_list(client *c);
void cmd_acl_users(client *c);
void cmd_acl_whoami(client *c);
void cmd_acl_cat(client *c);
void cmd_acl_genpass(client *c);
void cmd_acl_dryrun(client *c);
void cmd_acl_log(client *c);
void cmd_acl_save(client *c);
void cmd_acl_load(client *c);
void cmd_acl_help(client *c);

/* cmd_ft.c: search indices over hashes (RediSearch's FT.* commands) */
void cmd_ft_create(client *c);
void cmd_ft_search(client *c);
void cmd_ft_info(client *c);
void cmd_ft_list(client *c);
void cmd_ft_dropindex(client *c);
void cmd_ft_alter(client *c);
void cmd_ft_tagvals(client *c);
void cmd_ft_explain(client *c);

/* repl_master.c, repl_replica.c: replication */
void cmd_psync(client *c);
void cmd_sync(client *c);
void cmd_replconf(client *c);
void cmd_wait(client *c);
void cmd_role(client *c);
void cmd_replay(client *c);
void cmd_replicaof(client *c);

#endif
