{#- Apache Spark (dbt-spark, Spark 4): the `spark__` variants of the portable
    macros, and the few dbt-spark macros the warehouse needs to behave
    otherwise. Everything Spark-specific is in this file. -#}


{#- portable.sql ---------------------------------------------------------- -#}

{% macro spark__regexp_like(expression, pattern) -%}
    ({{ expression }} rlike '{{ pattern }}')
{%- endmacro %}

{#- Spark's try_cast reads what DuckDB's does once the text has passed the
    pattern (1e400 is infinity, 1e-400 is 0). -#}
{% macro spark__try_cast_number(expression) -%}
    case
        when {{ regexp_like(expression, '^[+-]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][+-]?[0-9]+)?$') }}
            then try_cast({{ expression }} as double)
    end
{%- endmacro %}

{#- try_cast gives null for 2017-02-30 but raises on year 0000, which DuckDB
    reads as 1 BC: that year is read four years later (0004 is a leap year
    too, so 0000-02-29 stays valid) and moved back 1461 days. -#}
{% macro spark__try_cast_date(expression) -%}
    case
        when substr({{ expression }}, 1, 4) = '0000'
            then date_add(try_cast({{ dbt.concat(["'0004'", "substr(" ~ expression ~ ", 5)"]) }} as date), -1461)
        else try_cast({{ expression }} as date)
    end
{%- endmacro %}

{% macro spark__type_double() -%}
    double
{%- endmacro %}


{#- sdtm_input.sql: the position of a seed row in its file. The seed is
    written as one Parquet file in file order (spark__load_csv_rows below),
    so its row index is that position. A unit test's fixture is a CTE of
    literal rows, read in the order written. -#}
{% macro spark__seed_row_number(relation) -%}
    {%- if (relation | string).startswith('__dbt__cte__') -%}
        row_number() over (order by monotonically_increasing_id())
    {%- else -%}
        row_number() over (order by _metadata.file_name, _metadata.row_index)
    {%- endif -%}
{%- endmacro %}


{#- Types ----------------------------------------------------------------- -#}

{#- The contracts (models/marts/*.yml) and the seeds declare their types as
    DuckDB and PostgreSQL spell them; Spark has no `varchar` without a length
    nor `double precision`. -#}
{% macro spark_type(data_type) -%}
    {%- set spelled = data_type | trim | lower -%}
    {%- if spelled in ('varchar', 'text', 'character varying') or spelled.startswith('varchar(') -%}
        string
    {%- elif spelled == 'double precision' -%}
        double
    {%- elif spelled == 'integer' -%}
        int
    {%- else -%}
        {{ data_type }}
    {%- endif -%}
{%- endmacro %}

{#- dbt checks a contract by casting null to each declared type. -#}
{% macro spark__cast(field, type) -%}
    cast({{ field }} as {{ spark_type(type) }})
{%- endmacro %}


{#- dbt-spark's listagg drops the order (collect_list); Spark 4 has the
    standard `listagg ... within group`. -#}
{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if limit_num -%}
        {{ exceptions.raise_compiler_error("listagg with a limit is not used on Spark") }}
    {%- endif -%}
    listagg({{ measure }}, {{ delimiter_text }})
    {%- if order_by_clause %} within group ({{ order_by_clause }}){% endif %}
{%- endmacro %}


{#- Where a table's files go. `hpd run --target spark` passes var
    `spark_location_root` (the refresh's own folder): every table is then an
    external Parquet table at `<root>/<schema>/<table>`, whatever database
    it is registered in, so publishing points the published table at the
    new files (hpd/spark.py). Without the var, dbt-spark's `location_root`
    config applies as usual. -#}
{% macro spark__location_clause() -%}
    {%- set root = var('spark_location_root', none) -%}
    {%- set suffix = var('schema_suffix', '') -%}
    {%- set schema = model['schema'] -%}
    {%- if suffix and schema.endswith(suffix) -%}
        {%- set schema = schema[:schema | length - suffix | length] -%}
    {%- endif -%}
    {%- if root -%}
        location '{{ root }}/{{ schema }}/{{ model["alias"] }}'
    {%- elif config.get('location_root') is not none -%}
        location '{{ config.get("location_root") }}/{{ model["alias"] }}'
    {%- endif -%}
{%- endmacro %}


{#- Seeds ----------------------------------------------------------------- -#}

{#- dbt-spark inserts seeds in batches through bound parameters, which on a
    session turn a blank cell into the text 'None' and break on a quote, and
    its batches land in files read back in no set order. Here a seed is one
    statement of escaped literals, coalesced into one Parquet file in file
    order, with the declared column types spelled for Spark. -#}
{% macro spark__create_csv_table(model, agate_table) -%}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set quote_seed_column = model['config'].get('quote_columns', None) -%}
    {%- set sql -%}
        create table {{ this.render() }} (
            {%- for col_name in agate_table.column_names -%}
                {%- set inferred_type = adapter.convert_type(agate_table, loop.index0) -%}
                {%- set type = column_override.get(col_name, inferred_type) -%}
                {{ adapter.quote_seed_column(col_name | string, quote_seed_column) }} {{ spark_type(type) }}
                {%- if not loop.last %}, {% endif -%}
            {%- endfor -%}
        )
        {{ file_format_clause() }}
        {{ location_clause() }}
        {{ comment_clause() }}
    {%- endset -%}
    {%- call statement('_') -%}
        {{ sql }}
    {%- endcall -%}
    {{ return(sql) }}
{%- endmacro %}

{% macro spark__load_csv_rows(model, agate_table) -%}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set types = [] -%}
    {%- for col_name in agate_table.column_names -%}
        {%- do types.append(spark_type(column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)))) -%}
    {%- endfor -%}
    {%- if agate_table.rows | length == 0 -%}
        {{ return('') }}
    {%- endif -%}
    {%- set sql -%}
        insert into {{ this.render() }}
        select /*+ coalesce(1) */
            {% for type in types -%}
            cast(c{{ loop.index0 }} as {{ type }}){% if not loop.last %}, {% endif %}
            {%- endfor %}
        from values
            {% for row in agate_table.rows -%}
            ({%- for value in row -%}{{ spark_literal(value) }}{% if not loop.last %}, {% endif %}{%- endfor -%})
            {%- if not loop.last %},{% endif %}
            {% endfor -%}
        as seed_rows(
            {%- for type in types -%}c{{ loop.index0 }}{% if not loop.last %}, {% endif %}{%- endfor -%}
        )
    {%- endset -%}
    {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
    {{ return(sql) }}
{%- endmacro %}

{#- A seed cell as a Spark SQL literal: text is escaped for Spark's string
    literals (backslash and quote); agate gives null for a blank cell. -#}
{% macro spark_literal(value) -%}
    {%- if value is none -%}
        null
    {%- elif value is sameas true -%}
        true
    {%- elif value is sameas false -%}
        false
    {%- elif value is number -%}
        {{ value }}
    {%- else -%}
        '{{ value | string | replace("\\", "\\\\") | replace("'", "\\'") }}'
    {%- endif -%}
{%- endmacro %}
