"""Translations of every label, legend and note on the maps (Chinese, English or both).

:func:`text` gives a label in one language or both; the map data carry no
other user-facing wording.
"""

from __future__ import annotations

from typing import Any

from .._errors import ConfigError

__all__ = ["LANGS", "TEXT", "text", "check_lang"]

#: Languages of labels, legends and popups.
LANGS = ("zh", "en", "both")

#: Label key → (Chinese, English); ``{name}`` fields are filled by :func:`text`.
TEXT: dict[str, tuple[str, str]] = {
    "settlements": ("村与社区", "Villages & communities"),
    "zones": ("压力分区", "Pressure zones"),
    "zones_count": ("{n} 个设计压力分区(减压阀或减压池之后)", "{n} designed pressure zones (behind a PRV or break tank)"),
    "zones_many": ("{n} 个设计压力分区(减压阀或减压池之后),点击分区查看名称",
                   "{n} designed pressure zones (behind a PRV or break tank); click one for its name"),
    "zone": ("分区", "Zone"),
    "zone_device": ("减压设施", "Pressure device"),
    "zone_setting": ("设定值", "Setting"),
    "zone_hgl": ("静水位标高", "Static HGL"),
    "zone_static_before": ("分区前最大静水压", "Max static head before"),
    "zone_static_after": ("分区后最大静水压", "Max static head after"),
    "mains": ("主管网", "Mains"),
    "branches": ("支管网", "Branches"),
    "facilities": ("水厂·泵站·水池", "Plant, pump stations, reservoirs"),
    "nodes": ("用水节点压力", "Demand-node pressure"),
    "district": ("区县界(GCJ-02转WGS84)", "District (GCJ-02→WGS84)"),
    "changes": ("与基准工况相比的变化", "Changes vs baseline"),
    "plant": ("水厂", "Water plant"),
    "pump_station": ("泵站", "Pump station"),
    "reservoir": ("水池", "Reservoir"),
    "village": ("村", "village"),
    "community": ("社区", "community"),
    "id": ("编号", "ID"),
    "kind": ("类型", "Type"),
    "population": ("人口", "Population"),
    "min_pressure": ("最低压力", "Minimum pressure"),
    "mean_pressure": ("平均压力", "Mean pressure"),
    "service_head": ("服务水头", "Service head"),
    "compliance": ("压力达标率", "Pressure compliance"),
    "served": ("供水满足率", "Demand served"),
    "min_chlorine": ("最低余氯", "Minimum free chlorine"),
    "max_age": ("最大水龄", "Maximum water age"),
    "verdict": ("评定", "Verdict"),
    "reason": ("原因", "Reason"),
    "fixes": ("建议措施", "Suggested fixes"),
    "score": ("得分", "Score"),
    "dim_network": ("同网", "Same network"),
    "dim_quality": ("同质", "Same quality"),
    "dim_pressure": ("服务压力", "Service pressure"),
    "dim_price": ("同价", "Same price"),
    "service_level": ("服务水平", "Service level"),
    "people_without_water": ("无水人口(最多时)", "People without water (peak)"),
    "people_hours": ("无水人·时", "Person-hours without water"),
    "min_pressure_change": ("最低压力变化", "Change in minimum pressure"),
    "change": ("变化", "Change"),
    "class": ("类别", "Class"),
    "main": ("主管", "main"),
    "branch": ("支管", "branch"),
    "diameter": ("管径", "Diameter"),
    "material": ("管材", "Material"),
    "length": ("长度", "Length"),
    "max_velocity": ("最大流速", "Maximum velocity"),
    "mean_flow": ("平均流量", "Mean flow"),
    "criticality": ("关键性(受影响人口)", "Criticality (people affected)"),
    "settlement": ("所属村/社区", "Settlement"),
    "elevation": ("地面高程", "Ground elevation"),
    "pressure_now": ("所选时刻压力", "Pressure at the selected hour"),
    "head": ("水头", "Head"),
    "capacity": ("规模", "Capacity"),
    "design_flow": ("设计流量", "Design flow"),
    "design_head": ("设计扬程", "Design head"),
    "fills": ("供水至", "Fills"),
    "bottom_elev": ("池底高程", "Bottom elevation"),
    "level_range": ("水位范围(最低–最高)", "Level range (min–max)"),
    "volume": ("容积", "Volume"),
    "sim_level": ("模拟水位(最低–最高)", "Simulated level (min–max)"),
    "energy": ("运行期能耗", "Energy over the run"),
    "time": ("时间", "Time"),
    "hour": ("第{h}小时", "hour {h}"),
    "min_over_run": ("全时段最低压力", "Minimum over the run"),
    "min_btn": ("最低", "Min"),
    "play": ("播放", "Play"),
    "pipe_colour": ("管线着色", "Pipe colouring"),
    "by_class": ("管径(粗线为主管)", "Diameter (thick = mains)"),
    "by_min_pressure": ("最低压力", "Minimum pressure"),
    "by_velocity": ("最大流速", "Maximum velocity"),
    "by_criticality": ("关键性(受影响人口)", "Criticality (people affected)"),
    "legend": ("图例", "Legend"),
    "no_data": ("无数据", "no data"),
    "pass": ("达标", "pass"),
    "warn": ("需关注", "warn"),
    "fail": ("不达标", "fail"),
    "meets": ("全时段满足服务水头", "service head met at all hours"),
    "mostly": ("≥{p}时段满足", "met in ≥ {p} of hours"),
    "below": ("低于服务水头", "below service head"),
    "no_water": ("部分时段无水", "without water at times"),
    "settlement_verdict": ("村与社区:评定", "Villages & communities: verdict"),
    "settlement_service": ("村与社区:服务水平", "Villages & communities: service level"),
    "p_no_water": ("无水 (<{a} m)", "no water (< {a} m)"),
    "p_band": ("{a}–{b} m", "{a}–{b} m"),
    "p_top": ("≥ {a} m", "≥ {a} m"),
    "v_stagnant": ("< {a} m/s 滞流", "< {a} m/s stagnant"),
    "v_low": ("{a}–{b} m/s 偏低", "{a}–{b} m/s low"),
    "v_econ": ("{a}–{b} m/s 经济流速", "{a}–{b} m/s economic"),
    "v_high": ("{a}–{b} m/s 偏高", "{a}–{b} m/s high"),
    "v_over": ("> {a} m/s 超限", "> {a} m/s over limit"),
    "dn_below": ("DN < {a}", "DN < {a}"),
    "dn_band": ("DN {a}–{b}", "DN {a}–{b}"),
    "dn_top": ("DN ≥ {a}", "DN ≥ {a}"),
    "people_none": ("0 人", "0 people"),
    "people_band": ("{a}–{b} 人", "{a}–{b} people"),
    "people_top": ("≥ {a} 人", "≥ {a} people"),
    "changed_pipe": ("变化的管段", "changed pipe"),
    "affected_settlement": ("受影响的村/社区", "affected settlement"),
    "basemap_none": ("无底图(离线)", "No basemap (offline)"),
    "osm": ("OpenStreetMap 底图", "OpenStreetMap"),
    "tianditu": ("天地图", "Tianditu"),
    "note_crs": ("坐标: WGS84 (EPSG:4326)", "Coordinates: WGS84 (EPSG:4326)"),
    "note_offline": ("本图离线可用, 不加载任何网络资源", "This map works offline and loads nothing from the network"),
    "note_district": ("区界原为GCJ-02(高德)坐标, 已迭代反算为WGS84(误差约1 m)",
                      "District outline converted from GCJ-02 (AMap) to WGS84 by iterative inversion (≈1 m)"),
    "note_gcj": ("高德/AMap 瓦片为GCJ-02加偏坐标(偏移数百米), 不可与本图直接叠加",
                 "Gaode/AMap tiles are GCJ-02-offset (by a few hundred metres); do not overlay them on this map"),
    "note_tianditu_key": ("天地图需要密钥: 请用 tianditu_key / --tianditu-key 提供",
                          "Tianditu needs a key: give it with tianditu_key / --tianditu-key"),
    "note_slider": ("滑块逐时显示节点压力", "Use the slider to step through node pressure hour by hour"),
    "notes": ("说明", "Notes"),
    "note_schematic": ("示意图: 坐标未地理配准(局部坐标, 米)", "Schematic drawing: local coordinates in metres, not georeferenced"),
    "coordinates": ("坐标", "Coordinates"),
    "north": ("北", "N"),
    "labels_omitted": ("{n}个村/社区名称因位置不足未标注", "{n} settlement names left out where they would overlap"),
    "note_labels": ("村/社区名称按规模优先标注, 放不下的在放大后或鼠标悬停时显示",
                    "Settlement names are placed largest first; those that do not fit show when you zoom in or hover"),
}


def text(key: str, lang: str = "both", **fmt: Any) -> str:
    """A label in the requested language (``both``: Chinese then English).

    Examples
    --------
    >>> text("mains", "zh"), text("mains", "en"), text("mains")
    ('主管网', 'Mains', '主管网 Mains')
    """
    zh, en = TEXT[key]
    zh, en = zh.format(**fmt), en.format(**fmt)
    if lang == "zh":
        return zh
    if lang == "en":
        return en
    return zh if zh == en else f"{zh} {en}"


def check_lang(lang: str) -> str:
    """`lang` if it is one of :data:`LANGS`, else a ConfigError naming the choices."""
    if lang not in LANGS:
        raise ConfigError(f"lang must be one of {', '.join(LANGS)}, got {lang!r}")
    return lang

