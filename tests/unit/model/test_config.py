from teamd_shim.model.config import desired_config, lacp_key, parse_lag, port_number

MAC = "02:11:22:33:44:55"


def pc(**kw):
    base = {
        "admin_status": "up",
        "mtu": "9100",
        "min_links": "1",
        "fast_rate": "true",
        "lacp_key": "auto",
    }
    base.update(kw)
    return base


def test_lacp_key_rule_matches_sonic():
    assert lacp_key("PortChannel0002", "auto") == 10002
    assert lacp_key("PortChannel103", "auto") == 1103
    assert lacp_key("PortChannel1", "77") == 77
    assert lacp_key("PortChannel1", None) == 0


def test_values_sonic_accepts_mean_what_teammgrd_makes_of_them():
    """A box moved between stock teamd and the shim keeps its LACP key and min_ports: the
    partner must not re-select."""
    absent = {k: v for k, v in pc().items() if k != "lacp_key"}
    assert parse_lag("PortChannel0001", absent, MAC).key == 0  # generateLacpKey: absent -> 0
    assert parse_lag("PortChannel0001", pc(lacp_key=""), MAC).key == 0
    assert parse_lag("PortChannel0001", pc(lacp_key="0"), MAC).key == 0
    assert parse_lag("PortChannel0001", pc(min_links="0"), MAC).min_links == 1  # 0 = unset
    for bad in ({"fast_rate": "True"}, {"lacp_key": "65536"}, {"min_links": "1025"}):
        try:
            parse_lag("PortChannel0001", pc(**bad), MAC)
        except ValueError as e:
            assert next(iter(bad)) in str(e)
        else:
            raise AssertionError(f"{bad} accepted")


def test_port_number_is_ethernet_index_plus_one_and_stable():
    assert port_number("Ethernet0") == 1
    assert port_number("Ethernet124") == 125
    # SONiC's atoi after "Ethernet": backplane ports all get 1, as stock teamd sends them
    assert port_number("Ethernet-BP0") == port_number("Ethernet-BP12") == 1
    assert port_number("veth7") == port_number("veth7")
    assert 1 <= port_number("eth-x") <= 65535


def test_valid_lag_parses():
    cfg = parse_lag("PortChannel0001", pc(min_links="2"), MAC)
    assert cfg.admin_up and cfg.fast_rate and cfg.min_links == 2 and cfg.key == 10001
    assert cfg.system == MAC


def test_bad_entries_are_refused_with_the_reason_and_do_not_touch_others():
    d = desired_config(
        {
            "PortChannel0001": pc(),
            "PortChannel0002": pc(fast_rate="maybe"),
            "Bogus7": pc(),
            "PortChannel0003": pc(mtu="99999"),
        },
        [("PortChannel0001", "Ethernet0"), ("PortChannel0002", "Ethernet4")],
        MAC,
    )
    assert set(d.lags) == {"PortChannel0001"}
    err = d.lag_errors["PortChannel0002"]
    assert "fast_rate" in err and "maybe" in err
    assert "bad LAG name" in d.lag_errors["Bogus7"]
    assert "mtu" in d.lag_errors["PortChannel0003"]
    assert d.lags["PortChannel0001"].members == ("Ethernet0",)
    assert "not running" in d.member_errors[("PortChannel0002", "Ethernet4")]


def test_port_in_two_lags_stays_with_its_current_owner():
    tables = {"PortChannel0001": pc(), "PortChannel0002": pc()}
    members = [("PortChannel0001", "Ethernet0"), ("PortChannel0002", "Ethernet0")]
    d = desired_config(tables, members, MAC, current_owner={"Ethernet0": "PortChannel0002"})
    assert d.lags["PortChannel0002"].members == ("Ethernet0",)
    assert d.lags["PortChannel0001"].members == ()
    err = d.member_errors[("PortChannel0001", "Ethernet0")]
    assert "already a member of PortChannel0002" in err


def test_missing_system_id_is_explained():
    d = desired_config({"PortChannel0001": pc()}, [], None)
    assert "DEVICE_METADATA" in d.lag_errors["PortChannel0001"]


def test_invalid_change_to_a_running_lag_keeps_its_settings_and_members():
    tables = {"PortChannel0001": pc(), "PortChannel0002": pc()}
    members = [("PortChannel0001", "Ethernet0"), ("PortChannel0002", "Ethernet0")]
    first = desired_config(tables, members, MAC)
    running = {"PortChannel0001": first.lags["PortChannel0001"]}
    tables["PortChannel0001"] = pc(min_links="zero")
    d = desired_config(
        tables, members, MAC, current_owner={"Ethernet0": "PortChannel0001"}, running=running
    )
    assert "min_links" in d.kept["PortChannel0001"]
    assert "PortChannel0001" not in d.lag_errors
    assert d.lags["PortChannel0001"].members == ("Ethernet0",)
    assert d.lags["PortChannel0002"].members == ()


def test_tpid_learn_mode_pass_through_and_fallback_as_teammgrd():
    from teamd_shim.model.config import port_settings

    cfg = parse_lag("PortChannel0001", pc(tpid="0x9100", learn_mode="disable"), MAC)
    assert (cfg.tpid, cfg.learn_mode) == ("0x9100", "disable")
    assert not parse_lag("PortChannel0001", pc(fallback="false"), MAC).fallback
    fb = parse_lag("PortChannel0001", pc(fallback="true"), MAC)
    assert fb.fallback and fb.lacp_settings().fallback
    for bad, word in (
        ({"tpid": "0x1234"}, "tpid"),
        ({"learn_mode": "always"}, "learn_mode"),
        ({"fallback": "yes"}, "fallback"),
    ):
        try:
            parse_lag("PortChannel0001", pc(**bad), MAC)
        except ValueError as e:
            assert word in str(e), e
        else:
            raise AssertionError(f"{bad} accepted")
    # teammgrd's member defaults when CONFIG_DB PORT says nothing: admin down, MTU 9100
    assert port_settings(None) == port_settings({}) and not port_settings(None).admin_up
    assert port_settings({"admin_status": "up", "mtu": "1500"}).mtu == 1500
